package shaders_test

import (
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/shaders"
	"github.com/stretchr/testify/require"
)

// TestTrainLaunchersRejectBadShapes: every training launcher refuses a shape
// that would read or write past a binding, or an output bound as an input,
// with an error naming the problem, and records nothing.
func TestTrainLaunchersRejectBadShapes(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	small := f32Tensor(t, dev, "small", engine.F32, 2, 3, nil)
	big := f32Tensor(t, dev, "big", engine.F32, 64, 64, nil)
	big2 := f32Tensor(t, dev, "big2", engine.F32, 64, 64, nil)
	big3 := f32Tensor(t, dev, "big3", engine.F32, 64, 64, nil)
	ids := f32Tensor(t, dev, "ids", engine.U32, 1, 8, nil)
	rec := dev.NewRecorder()
	defer rec.Discard()
	ap := shaders.TrainAttentionParams{T: 4, P: 2, Heads: 4, KVHeads: 2, HeadDim: 8, Scale: 0.3}
	for name, c := range map[string]struct {
		err  error
		want string
	}{
		"gemm small c":         {ops.GEMM(rec, big, big2, small, 4, 4, 4, shaders.GEMMOptions{}), "small"},
		"gemm aliased":         {ops.GEMM(rec, big, big2, big, 4, 4, 4, shaders.GEMMOptions{}), "shares a buffer"},
		"gemm stride":          {ops.GEMM(rec, big, big2, big3, 4, 4, 4, shaders.GEMMOptions{LDA: 2}), "strides"},
		"axpy past end":        {ops.Axpy(rec, big, 4090, big2, 0, 10, 1, 0), "big"},
		"fill past end":        {ops.Fill(rec, small, 5, 2, 0), "small"},
		"swiglu aliased":       {ops.SwiGLUBackward(rec, big, big2, big3, big2, big, 8), "shares a buffer"},
		"rmsnorm inv small":    {ops.RMSNormBackward(rec, big, big2, big3, f32Tensor(t, dev, "dx", engine.F32, 64, 64, nil), f32Tensor(t, dev, "dw", engine.F32, 1, 64, nil), small, 64, 64, 1e-5, false), "inv"},
		"attention heads":      {ops.AttentionTrain(rec, big, big2, big3, f32Tensor(t, dev, "o", engine.F32, 64, 64, nil), small, shaders.TrainAttentionParams{T: 2, Heads: 3, KVHeads: 2, HeadDim: 4}), "don't divide"},
		"attention stats":      {ops.AttentionTrain(rec, big, big2, big3, f32Tensor(t, dev, "o2", engine.F32, 64, 64, nil), small, ap), "stats"},
		"attention head dim":   {ops.AttentionTrain(rec, big, big2, big3, small, small, shaders.TrainAttentionParams{T: 1, Heads: 1, KVHeads: 1, HeadDim: 300}), "head dim"},
		"xent targets":         {ops.CrossEntropy(rec, big, small, big2, 4, 10, 1), "u32"},
		"embedding unique":     {ops.EmbeddingBackward(rec, ids, big, big2, 5, 3, 64), "distinct"},
		"adamw aliased":        {ops.AdamW(rec, big, big2, big3, big3, small, 8, shaders.AdamWParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: 1}), "five"},
		"adamw step 0":         {ops.AdamW(rec, big, big2, big3, small, small, 4, shaders.AdamWParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}), "step"},
		"adamw beta":           {ops.AdamW(rec, big, big2, big3, small, small, 4, shaders.AdamWParams{LR: 1e-3, Beta1: 1, Beta2: 0.999, Eps: 1e-8, Step: 1}), "beta"},
		"compress adjoint m>L": {ops.CompressAdjoint(rec, big, 0, big2, 0, big3, small, small, 4, 8, 64), "m <= L"},
		"compress adjoint buf": {ops.CompressAdjoint(rec, big, 0, big, 8, big2, big3, small, 8, 4, 64), "five different buffers"},
		"grad norm slots":      {ops.GradNormFinish(rec, small, 7, 1, big), "partials"},
	} {
		require.Error(t, c.err, name)
		require.Contains(t, c.err.Error(), c.want, name)
		require.NotContains(t, c.err.Error(), "\n", name)
	}
	_, err := ops.SumSquares(rec, big, 4096, small, 6)
	require.ErrorContains(t, err, "partials")
	require.Zero(t, rec.Dispatches)
}

// TestTrainAttentionTakesRealisticGroup: a 2048-token group over a 512-row
// prefix of a 32-head, head-dim-128 model (no GQA: the largest K/V) passes
// the launchers' checks within the binding limit. Recorded, not run.
func TestTrainAttentionTakesRealisticGroup(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	p := shaders.TrainAttentionParams{T: 2048, P: 512, Heads: 32, KVHeads: 32, HeadDim: 128, Scale: 0.088, AccumulatePrefix: true}
	width := p.Heads * p.HeadDim
	q := f32Tensor(t, dev, "q", engine.F32, p.T, width, nil) // also out and dout: reads may share
	kv := f32Tensor(t, dev, "kv", engine.F32, p.P+p.T, width, nil)
	stats := f32Tensor(t, dev, "stats", engine.F32, p.T*p.Heads, 2, nil)
	dq := f32Tensor(t, dev, "dq", engine.F32, p.T, width, nil)
	dk := f32Tensor(t, dev, "dk", engine.F32, p.P+p.T, width, nil)
	dv := f32Tensor(t, dev, "dv", engine.F32, p.P+p.T, width, nil)
	require.LessOrEqual(t, kv.Bytes(), dev.MaxBinding())
	rec := dev.NewRecorder()
	defer rec.Discard()
	require.NoError(t, ops.AttentionTrain(rec, q, kv, kv, dq, stats, p))
	require.NoError(t, ops.AttentionTrainBackward(rec, q, kv, kv, q, q, stats, dq, dk, dv, p))
	require.GreaterOrEqual(t, rec.Dispatches, 3)
}
