package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
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
	CompressGPUMs float64 `json:"compress_gpu_ms"` // GPU time of one whole compression (all layers, after a prefill), when profiled
	// Time between tokens over the decode loop (ms): median, 99th percentile, largest.
	StepP50Ms float64 `json:"step_p50_ms"`
	StepP99Ms float64 `json:"step_p99_ms"`
	StepMaxMs float64 `json:"step_max_ms"`
	// The decode steps that compressed the cache: their median and largest time (ms).
	CompressStepP50Ms float64 `json:"compress_step_p50_ms,omitempty"`
	CompressStepMaxMs float64 `json:"compress_step_max_ms,omitempty"`
	// DecodeDispatches is the compute dispatches of the last decode step.
	DecodeDispatches int `json:"decode_dispatches"`
	// DecodeKernels is the GPU time per kernel of one profiled decode step.
	DecodeKernels []engine.KernelTime `json:"decode_kernels,omitempty"`
	// PrefillKernels is the GPU time per kernel of one profiled prefill chunk, and
	// PrefillChunk its tokens.
	PrefillKernels []engine.KernelTime `json:"prefill_kernels,omitempty"`
	PrefillChunk   int                 `json:"prefill_chunk,omitempty"`
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
	steps := make([]time.Duration, decode)
	var compressing []time.Duration
	start = time.Now()
	last := start
	for i := 0; i < decode; i++ {
		before := ctx.Cache.Stats().Compressions
		if next, err = ctx.Next([]int32{next}, s, nil); err != nil {
			return measurement{}, fmt.Errorf("decode step %d: %w", i, err)
		}
		now := time.Now()
		steps[i], last = now.Sub(last), now
		if ctx.Cache.Stats().Compressions != before {
			compressing = append(compressing, steps[i])
		}
	}
	dec := time.Since(start)
	dispatches := ctx.LastDispatches()
	slices.Sort(steps)
	slices.Sort(compressing)
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
		StepP50Ms: quantileMs(steps, 0.5), StepP99Ms: quantileMs(steps, 0.99), StepMaxMs: quantileMs(steps, 1),
		CompressStepP50Ms: quantileMs(compressing, 0.5), CompressStepMaxMs: quantileMs(compressing, 1),
		DecodeDispatches: dispatches,
	}
	if opts.Cache.Kind == kvcache.FreqKV && opts.Cache.Compress == kvcache.Whole {
		meas.Policy += "-whole"
	}
	if profile && st.Compressions > 0 && dev.Timestamps {
		if meas.CompressGPUMs, err = compressTime(m, opts); err != nil {
			return meas, err
		}
	}
	return meas, nil
}

// quantileMs is the q-quantile of sorted durations in milliseconds (0 for none).
func quantileMs(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(q*float64(len(d))))].Seconds() * 1e3
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

// prefillProfile times, on the GPU, the kernels of one prefill chunk of up to tokens
// pseudo-random tokens in a fresh context (profiling serialises dispatches, so bench's
// prefill tok/s comes from the unprofiled run), and returns the chunk's length.
func prefillProfile(m *llama.Model, opts llama.ContextOptions, tokens int) ([]engine.KernelTime, int, error) {
	ctx, err := m.NewContext(opts)
	if err != nil {
		return nil, 0, err
	}
	defer ctx.Release()
	n := min(tokens, ctx.Chunk())
	kernels, err := ctx.WithProfile(func() error { return ctx.Prefill(pseudoTokens(n, m.H.Vocab)) })
	return kernels, n, err
}
