package engine_test

import (
	"math/rand/v2"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/shaders"
	"github.com/stretchr/testify/require"
)

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.Float64()*2 - 1)
	}
	return v
}

func TestDeviceAndRoundTrip(t *testing.T) {
	dev := gputest.Device(t)
	require.NotZero(t, dev.MaxBinding())
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 64, 1000, 70000 * 64 / 64} {
		a, b := randVec(r, n), randVec(r, n)
		ta, err := dev.NewTensor("a", engine.F32, 1, n)
		require.NoError(t, err)
		tb, _ := dev.NewTensor("b", engine.F32, 1, n)
		to, _ := dev.NewTensor("out", engine.F32, 1, n)
		require.NoError(t, ta.UploadF32(a))
		require.NoError(t, tb.UploadF32(b))
		poison := make([]float32, n)
		for i := range poison {
			poison[i] = float32(0x7fc00000) // NaN-like poison
		}
		require.NoError(t, to.UploadF32(randVec(r, n)))
		rec := dev.NewRecorder()
		require.NoError(t, shaders.New(dev).Add(rec, ta, tb, to, n))
		require.NoError(t, rec.SubmitAndWait())
		got, err := to.ReadF32()
		require.NoError(t, err)
		for i := range got {
			require.Equal(t, a[i]+b[i], got[i], "n=%d i=%d", n, i)
		}
		ta.Release()
		tb.Release()
		to.Release()
	}
}
