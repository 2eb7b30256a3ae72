package llama_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/llama"
)

// TestBatchStepEqualsSolo: decode steps of four contexts batched into one
// forward pass give each context the tokens (greedy and seeded sampling)
// its own steps give, through compressions of small freqkv caches and a
// window cache that wraps.
func TestBatchStepEqualsSolo(t *testing.T) {
	dev := gputest.Device(t)
	m := load(t, dev, shareddata.Path(t, "models/stories260K.bin"), shareddata.Path(t, "models/tok512.bin"))
	specs := []kvcache.Spec{
		kvcache.DefaultSpec(kvcache.FreqKV, 32, engine.F32),
		kvcache.DefaultSpec(kvcache.FreqKV, 48, engine.F32),
		kvcache.DefaultSpec(kvcache.Window, 24, engine.F32),
		{Kind: kvcache.Full, Size: 128, Storage: engine.F32},
		kvcache.DefaultSpec(kvcache.HeavyHitter, 32, engine.F32),
		{Kind: kvcache.FreqKV, Size: 40, Sink: 4, Ratios: []float64{0.25, 0.5, 0.5, 0.5, 0.75}, Sizes: []int{40, 24, 32, 40, 28}, Storage: engine.F32},
	}
	prompts := []string{"Once upon a time", "Tom had a red ball", "The sun was hot", "Lily went to", "The dog ran", "A big tree"}
	const steps = 60
	newCtx := func(i int) (*llama.Context, []int32) {
		c, err := m.NewContext(llama.ContextOptions{Cache: specs[i], MaxChunk: 16})
		require.NoError(t, err)
		t.Cleanup(c.Release)
		ids, err := m.Tok.Encode(prompts[i], true)
		require.NoError(t, err)
		return c, ids
	}
	sampler := func(i int) *llama.Sampler {
		if i == 1 {
			return &llama.Sampler{Temperature: 0.8, TopP: 0.9, Seed: 7}
		}
		return &llama.Sampler{}
	}
	// Solo: each context alone, Next by Next.
	solo := make([][]int32, len(specs))
	for i := range specs {
		c, ids := newCtx(i)
		s := sampler(i)
		hist := append([]int32(nil), ids...)
		next, err := c.Next(ids, s, hist)
		require.NoError(t, err)
		for range steps {
			solo[i] = append(solo[i], next)
			hist = append(hist, next)
			next, err = c.Next([]int32{next}, s, hist)
			require.NoError(t, err)
		}
	}
	// Batched: prompts alone, then every decode step in one pass.
	b, err := m.NewBatch(len(specs))
	require.NoError(t, err)
	defer b.Release()
	ctxs := make([]*llama.Context, len(specs))
	samplers := make([]*llama.Sampler, len(specs))
	hists := make([][]int32, len(specs))
	last := make([]int32, len(specs))
	got := make([][]int32, len(specs))
	for i := range specs {
		var ids []int32
		ctxs[i], ids = newCtx(i)
		samplers[i] = sampler(i)
		hists[i] = append([]int32(nil), ids...)
		last[i], err = ctxs[i].Next(ids, samplers[i], hists[i])
		require.NoError(t, err)
	}
	for range steps {
		for i := range specs {
			got[i] = append(got[i], last[i])
			hists[i] = append(hists[i], last[i])
		}
		last, err = b.Step(ctxs, last, samplers, hists)
		require.NoError(t, err)
	}
	for i := range specs {
		require.Equal(t, solo[i], got[i], "context %d (%v)", i, specs[i].Kind)
		if specs[i].Kind == kvcache.FreqKV {
			require.Positive(t, ctxs[i].Cache.Stats().Compressions, "context %d compressed during the steps", i)
		}
	}
	// Misuse is an error, not a panic.
	_, err = b.Step(append(ctxs, ctxs[0]), append(last, 1), append(samplers, samplers[0]), append(hists, hists[0]))
	require.Error(t, err)
	_, err = b.Step(ctxs[:2], []int32{1, 9999}, samplers[:2], hists[:2])
	require.Error(t, err)
}
