package shaders_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/shaders"
)

// Benchmarks of the training kernels. Sizes are named so a GPU run can pick
// the realistic ones (e.g. -bench 'AttentionTrain/T2048') and lavapipe the
// small ones:
//
//	go test ./shaders -run '^$' -bench 'GEMM|AttentionTrain/T256' -benchtime 3x

func trainTensor(b *testing.B, dev *engine.Device, label string, rows, cols int, r *rand.Rand) *engine.Tensor {
	b.Helper()
	t, err := dev.NewTensor(label, engine.F32, rows, cols)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(t.Release)
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	if err := t.UploadF32(v); err != nil {
		b.Fatal(err)
	}
	return t
}

// timeIt runs fn once to compile, then reports ms per call: the mean and
// the best (on a shared CPU adapter the best is the steadier number).
func timeIt(b *testing.B, dev *engine.Device, fn func(rec *engine.Recorder) error) {
	step := func() time.Duration {
		start := time.Now()
		rec := dev.NewRecorder()
		if err := fn(rec); err != nil {
			b.Fatal(err)
		}
		if err := rec.SubmitAndWait(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	step()
	var total, best time.Duration
	n := 0
	for b.Loop() {
		d := step()
		total += d
		if n == 0 || d < best {
			best = d
		}
		n++
	}
	b.ReportMetric(float64(total.Microseconds())/1e3/float64(n), "ms/op")
	b.ReportMetric(float64(best.Microseconds())/1e3, "best-ms")
}

func BenchmarkGEMM(b *testing.B) {
	for _, c := range []struct {
		m, n, k int
		ta, tb  bool
	}{{256, 256, 256, false, true}, {256, 256, 256, false, false}, {256, 256, 256, true, false},
		{2048, 2560, 2560, false, true}, {2560, 2560, 2048, true, false}} {
		b.Run(fmt.Sprintf("m%d_n%d_k%d_ta%v_tb%v", c.m, c.n, c.k, c.ta, c.tb), func(b *testing.B) {
			dev := gputest.Device(b)
			ops := shaders.New(dev)
			r := rand.New(rand.NewPCG(1, 2))
			a := trainTensor(b, dev, "a", c.m, c.k, r)
			w := trainTensor(b, dev, "b", c.k, c.n, r)
			out := trainTensor(b, dev, "c", c.m, c.n, r)
			timeIt(b, dev, func(rec *engine.Recorder) error {
				return ops.GEMM(rec, a, w, out, c.m, c.n, c.k, shaders.GEMMOptions{TransA: c.ta, TransB: c.tb})
			})
			b.ReportMetric(2*float64(c.m*c.n*c.k)/1e9/(b.Elapsed().Seconds()/float64(b.N)), "GFLOP/s")
		})
	}
}

func BenchmarkAttentionTrain(b *testing.B) {
	for _, c := range []shaders.TrainAttentionParams{
		{T: 256, P: 256, Heads: 8, KVHeads: 2, HeadDim: 64},
		{T: 512, P: 0, Heads: 16, KVHeads: 4, HeadDim: 64}, // BenchmarkAttentionPrefill/f16/T512_rows0 in the inference kernel
		{T: 2048, P: 512, Heads: 32, KVHeads: 8, HeadDim: 128},
	} {
		c.Scale = 0.125
		name := fmt.Sprintf("T%d_P%d_H%d_KV%d_D%d", c.T, c.P, c.Heads, c.KVHeads, c.HeadDim)
		dev := gputest.Device(b)
		ops := shaders.New(dev)
		r := rand.New(rand.NewPCG(3, 4))
		rows, w, kw := c.P+c.T, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
		var q, k, v, out, dout, stats, dq, dk, dv *engine.Tensor
		setup := func(b *testing.B) {
			q, out, dout, dq = trainTensor(b, dev, "q", c.T, w, r), trainTensor(b, dev, "out", c.T, w, r), trainTensor(b, dev, "dout", c.T, w, r), trainTensor(b, dev, "dq", c.T, w, r)
			k, v, dk, dv = trainTensor(b, dev, "k", rows, kw, r), trainTensor(b, dev, "v", rows, kw, r), trainTensor(b, dev, "dk", rows, kw, r), trainTensor(b, dev, "dv", rows, kw, r)
			stats = trainTensor(b, dev, "stats", c.T*c.Heads, 2, r)
		}
		b.Run(name+"/forward", func(b *testing.B) {
			setup(b)
			timeIt(b, dev, func(rec *engine.Recorder) error { return ops.AttentionTrain(rec, q, k, v, out, stats, c) })
		})
		b.Run(name+"/backward", func(b *testing.B) {
			setup(b)
			if err := func() error {
				rec := dev.NewRecorder()
				if err := ops.AttentionTrain(rec, q, k, v, out, stats, c); err != nil {
					return err
				}
				return rec.SubmitAndWait()
			}(); err != nil {
				b.Fatal(err)
			}
			timeIt(b, dev, func(rec *engine.Recorder) error {
				return ops.AttentionTrainBackward(rec, q, k, v, out, dout, stats, dq, dk, dv, c)
			})
		})
	}
}

// BenchmarkMatMulBackwardX compares the input-gradient product with the
// forward tiled product over the same weight (the training step runs both).
func BenchmarkMatMulBackwardX(b *testing.B) {
	for _, c := range benchTypes {
		const m, n, k = 128, 1024, 1024
		dev := gputest.Device(b)
		ops := shaders.New(dev)
		w := benchWeight(b, dev, c.dt, c.gt, n, k)
		r := rand.New(rand.NewPCG(5, 6))
		x, y := trainTensor(b, dev, "x", m, k, r), trainTensor(b, dev, "y", m, n, r)
		b.Run(fmt.Sprintf("%s/forward_m%d_n%d_k%d", c.dt, m, n, k), func(b *testing.B) {
			timeIt(b, dev, func(rec *engine.Recorder) error { return ops.MatMul(rec, x, w, y, m, shaders.MatMulOptions{}) })
		})
		b.Run(fmt.Sprintf("%s/backward_x_m%d_n%d_k%d", c.dt, m, n, k), func(b *testing.B) {
			timeIt(b, dev, func(rec *engine.Recorder) error { return ops.MatMulBackwardX(rec, y, w, x, m, false) })
		})
	}
}
