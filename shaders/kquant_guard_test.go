package shaders_test

import (
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/shaders"
	"github.com/stretchr/testify/require"
)

// TestBackwardRefusesBlockTypesItCannotRead: matmul_bwd.wgsl decodes f32,
// f16, q8_0 and q4_0 only; a K-quant or other block weight is an error, not
// a weight silently read as q4_0.
func TestBackwardRefusesBlockTypesItCannotRead(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	for _, dt := range []engine.DType{engine.Q4_K, engine.Q6_K, engine.Q5_0, engine.IQ4_NL} {
		rb, err := dt.RowBytes(256)
		require.NoError(t, err)
		w, err := dev.UploadWeight("w", dt, 2, 256, make([]byte, 2*rb), 0)
		require.NoError(t, err)
		dy, err := dev.NewTensor("dy", engine.F32, 1, 2)
		require.NoError(t, err)
		dx, err := dev.NewTensor("dx", engine.F32, 1, 256)
		require.NoError(t, err)
		rec := dev.NewRecorder()
		err = ops.MatMulBackwardX(rec, dy, w, dx, 1, false)
		rec.Discard()
		require.ErrorContains(t, err, "is not supported", dt.String())
		w.Release()
		dy.Release()
		dx.Release()
	}
}
