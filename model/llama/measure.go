package llama

import (
	"fmt"
	"slices"
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
	// Time between tokens over the decode loop (ms): median, 99th percentile, largest.
	StepP50Ms float64 `json:"step_p50_ms"`
	StepP99Ms float64 `json:"step_p99_ms"`
	StepMaxMs float64 `json:"step_max_ms"`
	// Steps that compressed the cache: their median and largest time (ms).
	CompressStepP50Ms float64 `json:"compress_step_p50_ms,omitempty"`
	CompressStepMaxMs float64 `json:"compress_step_max_ms,omitempty"`
	// DecodeDispatches is the compute dispatches of the last decode step.
	DecodeDispatches int `json:"decode_dispatches"`
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
	steps := make([]time.Duration, decode)
	var compressing []time.Duration
	start = time.Now()
	last := start
	for i := 0; i < decode; i++ {
		before := ctx.Cache.Stats().Compressions
		if next, err = ctx.Next([]int32{next}, s, nil); err != nil {
			return Measurement{}, fmt.Errorf("decode step %d: %w", i, err)
		}
		now := time.Now()
		steps[i], last = now.Sub(last), now
		if ctx.Cache.Stats().Compressions != before {
			compressing = append(compressing, steps[i])
		}
	}
	dec := time.Since(start)
	// ms is the q-quantile of sorted durations, in milliseconds.
	ms := func(d []time.Duration, q float64) float64 {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(q*float64(len(d))))].Seconds() * 1e3
	}
	slices.Sort(steps)
	slices.Sort(compressing)
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
		StepP50Ms: ms(steps, 0.5), StepP99Ms: ms(steps, 0.99), StepMaxMs: ms(steps, 1), DecodeDispatches: ctx.lastDispatches,
		CompressStepP50Ms: ms(compressing, 0.5), CompressStepMaxMs: ms(compressing, 1),
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
