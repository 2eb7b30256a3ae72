package llama

import (
	"fmt"
	"time"

	"github.com/freqkv/freqkv/engine"
)

// Measurement is one benchmark row: a context filled to Tokens by prefill,
// then Decoded tokens generated greedily.
type Measurement struct {
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

// Measure fills a fresh context with tokens pseudo-random tokens, then
// decodes decode more. With profile, compression kernels are timed on the
// GPU in a separate pass (profiling serialises dispatches, so the tok/s
// figures come from the unprofiled run).
func (m *Model) Measure(opts CacheOptions, tokens, decode int, profile bool) (Measurement, error) {
	ctx, err := m.NewContext(opts)
	if err != nil {
		return Measurement{}, err
	}
	defer ctx.Release()
	ids := make([]int32, tokens)
	x := uint32(2463534242)
	for i := range ids {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		ids[i] = int32(x % uint32(m.H.Vocab))
	}
	start := time.Now()
	if err := ctx.Prefill(ids); err != nil {
		return Measurement{}, fmt.Errorf("prefill %d tokens: %w", tokens, err)
	}
	prefill := time.Since(start)
	s := &Sampler{}
	next := ids[len(ids)-1]
	start = time.Now()
	for i := 0; i < decode; i++ {
		if next, err = ctx.Next([]int32{next}, s, nil); err != nil {
			return Measurement{}, fmt.Errorf("decode step %d: %w", i, err)
		}
	}
	dec := time.Since(start)
	var kernels []engine.KernelTime
	if profile && m.dev.Timestamps {
		if kernels, err = ctx.WithProfile(func() error {
			_, err := ctx.Next([]int32{next}, s, nil)
			return err
		}); err != nil {
			return Measurement{}, err
		}
	}
	st := ctx.Cache.Stats()
	meas := Measurement{
		Policy: opts.Policy, KV: opts.KV.String(), Tokens: tokens, PrefillTPS: rate(tokens, prefill),
		Decoded: decode, DecodeTPS: rate(decode, dec), KVBytes: st.Bytes, FullKVBytes: m.KVBytesFull(tokens+decode, opts.KV),
		Rows: st.Rows, Compressions: st.Compressions, DecodeKernels: kernels,
	}
	if profile && opts.Policy == "freqkv" && m.dev.Timestamps {
		ms, err := m.compressTime(opts)
		if err != nil {
			return meas, err
		}
		meas.CompressGPUMs = ms
	}
	return meas, nil
}

// compressTime fills a cache to N rows and times the one compression the
// next token triggers, on the GPU.
func (m *Model) compressTime(opts CacheOptions) (float64, error) {
	ctx, err := m.NewContext(opts)
	if err != nil {
		return 0, err
	}
	defer ctx.Release()
	if err := ctx.Prefill(make([]int32, opts.FreqKV.CacheSize)); err != nil {
		return 0, err
	}
	prof, err := m.dev.NewProfile()
	if err != nil {
		return 0, err
	}
	defer prof.Release()
	rec := m.dev.NewRecorder()
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

// WithProfile runs fn with every recorder of the context profiled and
// returns GPU time per kernel.
func (c *Context) WithProfile(fn func() error) ([]engine.KernelTime, error) {
	prof, err := c.m.dev.NewProfile()
	if err != nil {
		return nil, err
	}
	defer prof.Release()
	c.profile = prof
	defer func() { c.profile = nil }()
	if err := fn(); err != nil {
		return nil, err
	}
	return prof.Sorted(), nil
}
