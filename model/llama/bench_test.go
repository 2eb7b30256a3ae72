package llama_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/synth"
)

var (
	mediumOnce  sync.Once
	mediumPaths = map[ggml.Type]string{}
	mediumDir   string
)

// medium writes the synthetic "medium" model (dim 1024, 8 layers, 16 heads,
// 4 kv heads, ffn 2816, vocab 32000) once per weight type.
func medium(b *testing.B, wt ggml.Type) *llama.Model {
	mediumOnce.Do(func() { mediumDir = b.TempDir() })
	path, ok := mediumPaths[wt]
	if !ok {
		path = filepath.Join(mediumDir, fmt.Sprintf("medium-%s.gguf", wt))
		s := synth.Medium()
		s.WeightType = wt
		if err := synth.Write(path, s); err != nil {
			b.Fatal(err)
		}
		mediumPaths[wt] = path
	}
	dev := gputest.Device(b)
	f, err := llama.Open(path, llama.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	m, err := llama.Load(dev, f, llama.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Release)
	return m
}

// fillAndDecode fills a fresh context with ctx tokens, then decodes 16 greedily, and reports
// tok/s of both phases and the KV bytes held (the bench command is the full harness).
func fillAndDecode(b *testing.B, m *llama.Model, spec kvcache.Spec, ctx int) {
	c, err := m.NewContext(llama.ContextOptions{Cache: spec})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Release()
	ids := make([]int32, ctx)
	for i := range ids {
		ids[i] = int32((i*7919 + 13) % m.H.Vocab)
	}
	start := time.Now()
	if err := c.Prefill(ids); err != nil {
		b.Fatal(err)
	}
	prefill := time.Since(start)
	start = time.Now()
	next, s := ids[ctx-1], &llama.Sampler{}
	const decode = 16
	for range decode {
		if next, err = c.Next([]int32{next}, s, nil); err != nil {
			b.Fatal(err)
		}
	}
	dec := time.Since(start)
	b.ReportMetric(float64(ctx)/prefill.Seconds(), "prefill_tok/s")
	b.ReportMetric(decode/dec.Seconds(), "decode_tok/s")
	b.ReportMetric(float64(c.Cache.Stats().Bytes)/(1<<20), "KV_MiB")
}

// BenchmarkMedium: prefill and decode tok/s of the medium model in f32 and
// f16 weights at context 512 and 4096 (full cache, f16 KV).
func BenchmarkMedium(b *testing.B) {
	for _, wt := range []ggml.Type{ggml.F16, ggml.F32} {
		for _, ctx := range []int{512, 4096} {
			b.Run(fmt.Sprintf("%s/ctx%d", wt, ctx), func(b *testing.B) {
				m := medium(b, wt)
				for i := 0; i < b.N; i++ {
					fillAndDecode(b, m, kvcache.Spec{Kind: kvcache.Full, Size: ctx + 17, Storage: engine.F16}, ctx)
				}
			})
		}
	}
}

// BenchmarkFreqKVvsFull: decode tok/s and KV bytes of freqkv (N = 2048)
// against a full cache at 2K, 8K and 16K tokens, side by side.
func BenchmarkFreqKVvsFull(b *testing.B) {
	for _, ctx := range []int{2048, 8192, 16384} {
		for _, spec := range []kvcache.Spec{
			{Kind: kvcache.Full, Size: ctx + 17, Storage: engine.F16},
			kvcache.DefaultSpec(kvcache.FreqKV, 2048, engine.F16),
		} {
			b.Run(fmt.Sprintf("ctx%d/%v", ctx, spec.Kind), func(b *testing.B) {
				m := medium(b, ggml.F16)
				for i := 0; i < b.N; i++ {
					fillAndDecode(b, m, spec, ctx)
				}
			})
		}
	}
}

// BenchmarkMediumDecodeUniformX: decode of the medium model with the decode
// matvec reading x through a uniform binding (the default on CPU adapters for
// f32, f16, q8_0 and q4_0 weights) against a storage binding, rounds alternating in one process; reports the
// median decode tok/s of each and their ratio.
func BenchmarkMediumDecodeUniformX(b *testing.B) {
	for _, wt := range []ggml.Type{ggml.F16, ggml.Q8_0, ggml.Q4_0} {
		m := medium(b, wt) // outside b.Run: the files live in the parent's TempDir
		b.Run(wt.String(), func(b *testing.B) {
			ctx, err := m.NewContext(llama.ContextOptions{Cache: kvcache.Spec{Kind: kvcache.Full, Size: 1024, Storage: engine.F16}})
			if err != nil {
				b.Fatal(err)
			}
			defer ctx.Release()
			ids := make([]int32, 64)
			for i := range ids {
				ids[i] = int32(i*7 + 3)
			}
			if err := ctx.Prefill(ids); err != nil {
				b.Fatal(err)
			}
			s := &llama.Sampler{}
			next := int32(1)
			var tps [2][]float64
			for b.Loop() {
				for i, storage := range []bool{true, false} {
					m.Ops().StorageX = storage
					start := time.Now()
					for range 4 {
						if next, err = ctx.Next([]int32{next}, s, nil); err != nil {
							b.Fatal(err)
						}
					}
					tps[i] = append(tps[i], 4/time.Since(start).Seconds())
				}
			}
			m.Ops().StorageX = false
			med := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
			b.ReportMetric(med(tps[0]), "tok/s-storage-x")
			b.ReportMetric(med(tps[1]), "tok/s-uniform-x")
			b.ReportMetric(med(tps[1])/med(tps[0]), "speedup")
		})
	}
}
