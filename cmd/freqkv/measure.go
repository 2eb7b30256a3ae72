package main

import (
	"fmt"
	"time"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/model/llama"
)

// measurement is one row of bench: a context filled to Tokens by prefill, then Decoded
// tokens generated greedily.
type measurement struct {
	Policy        string  `json:"cache"`
	KV            string  `json:"kv"`
	Tokens        int     `json:"context_tokens"`
	PrefillTPS    float64 `json:"prefill_tok_s"`
	Decoded       int     `json:"decoded"`
	DecodeTPS     float64 `json:"decode_tok_s"`
	KVBytes       int64   `json:"kv_bytes"`
	FullKVBytes   int64   `json:"full_kv_bytes"`
	Rows          int     `json:"cache_rows"`
	Compressions  int     `json:"compressions"`
	CompressGPUMs float64 `json:"compress_gpu_ms"` // mean GPU time of one compression (all layers), when profiled
	// DecodeKernels is the GPU time per kernel of one profiled decode step.
	DecodeKernels []engine.KernelTime `json:"decode_kernels,omitempty"`
}

// pseudoTokens is n reproducible token ids below vocab (xorshift32).
func pseudoTokens(n, vocab int) []int32 {
	ids := make([]int32, n)
	x := uint32(2463534242)
	for i := range ids {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		ids[i] = int32(x % uint32(vocab))
	}
	return ids
}

// measure fills a fresh context with tokens pseudo-random tokens, then decodes decode more.
// With profile, one decode step's kernels are timed on the GPU, and, when the run
// compressed, one compression in a separate pass (profiling serialises dispatches, so the
// tok/s figures come from the unprofiled run).
func measure(m *llama.Model, opts llama.ContextOptions, tokens, decode int, profile bool) (measurement, error) {
	ctx, err := m.NewContext(opts)
	if err != nil {
		return measurement{}, err
	}
	defer ctx.Release()
	ids := pseudoTokens(tokens, m.H.Vocab)
	start := time.Now()
	if err := ctx.Prefill(ids); err != nil {
		return measurement{}, fmt.Errorf("prefill %d tokens: %w", tokens, err)
	}
	prefill := time.Since(start)
	s := &llama.Sampler{}
	next := ids[len(ids)-1]
	start = time.Now()
	for i := 0; i < decode; i++ {
		if next, err = ctx.Next([]int32{next}, s, nil); err != nil {
			return measurement{}, fmt.Errorf("decode step %d: %w", i, err)
		}
	}
	dec := time.Since(start)
	dev := m.Device()
	var kernels []engine.KernelTime
	if profile && dev.Timestamps {
		if kernels, err = ctx.WithProfile(func() error {
			_, err := ctx.Next([]int32{next}, s, nil)
			return err
		}); err != nil {
			return measurement{}, err
		}
	}
	st := ctx.Cache.Stats()
	full, err := m.CacheGeometry().SpecBytes(opts.Cache, tokens+decode)
	if err != nil {
		return measurement{}, err
	}
	meas := measurement{
		Policy: opts.Cache.Kind.String(), KV: kvName(opts.Cache), Tokens: tokens,
		PrefillTPS: rate(tokens, prefill), Decoded: decode, DecodeTPS: rate(decode, dec),
		KVBytes: st.Bytes, FullKVBytes: full, Rows: st.Rows, Compressions: st.Compressions, DecodeKernels: kernels,
	}
	if profile && st.Compressions > 0 && dev.Timestamps {
		if meas.CompressGPUMs, err = compressTime(m, opts); err != nil {
			return meas, err
		}
	}
	return meas, nil
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// compressTime fills a cache to its size and times, on the GPU, the step the next token
// needs (for a compressing cache: one compression of every layer).
func compressTime(m *llama.Model, opts llama.ContextOptions) (float64, error) {
	ctx, err := m.NewContext(opts)
	if err != nil {
		return 0, err
	}
	defer ctx.Release()
	if err := ctx.Prefill(make([]int32, opts.Cache.Size)); err != nil {
		return 0, err
	}
	prof, err := m.Device().NewProfile()
	if err != nil {
		return 0, err
	}
	defer prof.Release()
	rec := m.Device().NewRecorder()
	rec.Profile = prof
	if _, err := ctx.Cache.Next(rec, 1); err != nil {
		return 0, err
	}
	if err := rec.SubmitAndWait(); err != nil {
		return 0, err
	}
	var total time.Duration
	for _, k := range prof.Sorted() {
		total += k.Total
	}
	return float64(total) / 1e6, nil
}
