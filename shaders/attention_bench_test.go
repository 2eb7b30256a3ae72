package shaders_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/shaders"
)

// Benchmarks of attention at LLaMA-like shapes (16 heads, 4 KV heads, head
// dim 64). Each iteration records reps layers (8 for decode) in one submit
// and waits once; the metric is µs per layer. Submits stay well under 5 s:
// on lavapipe a longer one outlasts wgpu's wait and the next one crashes the
// driver. Run with e.g.
//
//	go test ./shaders -run '^$' -bench Attention -benchtime 5x
//
// BenchmarkAttentionProfile logs the GPU time of each pass (timestamps).

type attentionSetup struct {
	ops                         *shaders.Ops
	q, k, v, rope, out, scratch *engine.Tensor
	p                           shaders.AttentionParams
	reps                        int // layers per submit
}

func attnTensor(b *testing.B, dev *engine.Device, label string, dt engine.DType, rows, cols int, r *rand.Rand) *engine.Tensor {
	b.Helper()
	t, err := dev.NewTensor(label, dt, rows, cols)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(t.Release)
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	if dt == engine.F16 {
		raw := make([]byte, 2*len(v))
		for i, f := range v {
			h := ggml.F32ToF16(f)
			raw[2*i], raw[2*i+1] = byte(h), byte(h>>8)
		}
		err = t.Upload(raw)
	} else {
		err = t.UploadF32(v)
	}
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// newAttention prepares T queries after rows cached rows (no window).
func newAttention(b *testing.B, cache engine.DType, T, rows int) *attentionSetup {
	b.Helper()
	dev := gputest.Device(b)
	p := shaders.AttentionParams{T: T, Heads: 16, KVHeads: 4, HeadDim: 64, RopeDim: 64, Rows: rows, Cap: rows + T, Scale: 0.125}
	r := rand.New(rand.NewPCG(uint64(T), uint64(rows)))
	s := &attentionSetup{ops: shaders.New(dev), p: p, reps: 8}
	s.q = attnTensor(b, dev, "q", engine.F32, T, p.Heads*p.HeadDim, r)
	s.k = attnTensor(b, dev, "k", cache, p.Cap, p.KVHeads*p.HeadDim, r)
	s.v = attnTensor(b, dev, "v", cache, p.Cap, p.KVHeads*p.HeadDim, r)
	s.out = attnTensor(b, dev, "out", engine.F32, T, p.Heads*p.HeadDim, r)
	s.scratch = attnTensor(b, dev, "scratch", engine.F32, 1, shaders.AttentionScratch(p), r)
	var err error
	if s.rope, err = dev.NewTensor("rope", engine.F32, p.Cap, p.RopeDim); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.rope.Release)
	if err := s.rope.UploadF32(shaders.RopeTable(p.Cap, p.RopeDim, 10000, 1)); err != nil {
		b.Fatal(err)
	}
	return s
}

func (s *attentionSetup) step(b *testing.B, prof *engine.Profile) {
	rec := s.ops.Dev.NewRecorder()
	rec.Profile = prof
	for range s.reps {
		if err := s.ops.Attention(rec, s.q, s.k, s.v, s.rope, s.out, s.scratch, s.p); err != nil {
			b.Fatal(err)
		}
	}
	if err := rec.SubmitAndWait(); err != nil {
		b.Fatal(err)
	}
}

func (s *attentionSetup) run(b *testing.B) {
	s.step(b, nil) // compile and warm up
	b.ResetTimer()
	start := time.Now()
	n := 0
	for b.Loop() {
		s.step(b, nil)
		n++
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(n*s.reps), "µs/layer")
}

func BenchmarkAttentionDecode(b *testing.B) {
	for _, cache := range []engine.DType{engine.F16, engine.F32} {
		for _, rows := range []int{512, 2048, 4096} {
			b.Run(fmt.Sprintf("%s/rows%d", cache, rows), func(b *testing.B) {
				newAttention(b, cache, 1, rows-1).run(b) // the query is the rows-th key
			})
		}
	}
}

// BenchmarkAttentionPrefill times a prefill chunk's attention with the keys rotated once
// per call (krope) and rotated per query, alternating in one process, in µs per layer of
// each and their ratio. T=256 at rows 0 and 3840 is a 4096-token prefill's first and last
// chunk.
func BenchmarkAttentionPrefill(b *testing.B) {
	for _, c := range []struct{ t, rows, reps int }{{128, 0, 8}, {256, 0, 4}, {256, 1792, 2}, {256, 3840, 1}} {
		b.Run(fmt.Sprintf("f16/T%d_rows%d", c.t, c.rows), func(b *testing.B) {
			once := newAttention(b, engine.F16, c.t, c.rows)
			per := *once
			per.p.RotatePerQuery = true
			once.reps, per.reps = c.reps, c.reps
			once.step(b, nil) // compile and warm up
			per.step(b, nil)
			var tOnce, tPer time.Duration
			n := 0
			for b.Loop() {
				start := time.Now()
				once.step(b, nil)
				mid := time.Now()
				per.step(b, nil)
				tOnce, tPer = tOnce+mid.Sub(start), tPer+time.Since(mid)
				n++
			}
			us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n*c.reps) }
			b.ReportMetric(us(tOnce), "µs/layer-rotate-once")
			b.ReportMetric(us(tPer), "µs/layer-rotate-per-query")
			b.ReportMetric(us(tPer)/us(tOnce), "speedup")
		})
	}
}

// BenchmarkAttentionProfile logs each pass's GPU time for a decode step:
// the best of the iterations, since a shared CPU adapter is noisy.
func BenchmarkAttentionProfile(b *testing.B) {
	for _, rows := range []int{512, 4096} {
		b.Run(fmt.Sprintf("f16/rows%d", rows), func(b *testing.B) {
			s := newAttention(b, engine.F16, 1, rows-1)
			s.step(b, nil)
			best := map[string]time.Duration{}
			for b.Loop() {
				prof, err := s.ops.Dev.NewProfile()
				if err != nil {
					b.Skip(err)
				}
				s.step(b, prof)
				for _, k := range prof.Sorted() {
					if d := k.Total / time.Duration(k.Calls); best[k.Name] == 0 || d < best[k.Name] {
						best[k.Name] = d
					}
				}
				prof.Release()
			}
			var total time.Duration
			for name, d := range best {
				b.Logf("%-32s %8.1f µs", name, float64(d.Nanoseconds())/1e3)
				total += d
			}
			b.Logf("%-32s %8.1f µs", "total", float64(total.Nanoseconds())/1e3)
		})
	}
}
