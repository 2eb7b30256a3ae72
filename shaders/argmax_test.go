package shaders_test

import (
	"math"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/shaders"
	"github.com/stretchr/testify/require"
)

// TestArgmaxNonFinite: a NaN or an infinity anywhere in the input (first,
// last, in another invocation's stride) answers ArgmaxNonFinite; finite
// inputs still give the index of the maximum.
func TestArgmaxNonFinite(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	const n = 1000
	x, err := dev.NewTensor("x", engine.F32, 1, n)
	require.NoError(t, err)
	defer x.Release()
	out, err := dev.NewTensor("out", engine.U32, 1, 1)
	require.NoError(t, err)
	defer out.Release()
	run := func(v []float32) uint32 {
		require.NoError(t, x.UploadF32(v))
		rec := dev.NewRecorder()
		require.NoError(t, ops.Argmax(rec, x, out, n))
		rb := rec.ReadBack(out.Buf, out.Offset, 4)
		require.NoError(t, rec.SubmitAndWait())
		return rb.Uint32s()[0]
	}
	base := make([]float32, n)
	for i := range base {
		base[i] = float32(math.Sin(float64(i)))
	}
	base[617] = 3
	require.Equal(t, uint32(617), run(base))
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		for _, at := range []int{0, 1, 255, 617, n - 1} {
			v := append([]float32(nil), base...)
			v[at] = bad
			require.Equal(t, uint32(shaders.ArgmaxNonFinite), run(v), "%v at %d", bad, at)
		}
	}
}
