package llama_test

import (
	"path/filepath"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/model/cpuref"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/synth"
	"github.com/stretchr/testify/require"
)

// TestArchitectureParity: every architecture feature, on synthetic GGUFs in
// llama.cpp's converter layout, gives the float64 CPU reference's logits
// (which share no code with the GPU path) under each cache policy: Llama 3
// rope factors, YaRN, qwen3's Q/K norms and head width, Mistral's sliding
// window.
func TestArchitectureParity(t *testing.T) {
	dev := gputest.Device(t)
	base := synth.Spec{Arch: "llama", Dim: 48, Layers: 2, Heads: 6, KVHeads: 2, FFN: 72, Vocab: 300, Context: 256, WeightType: ggml.F32, RopeBase: 10000, Seed: 11}
	llama3 := base
	// An original context of 64 puts this model's 4 pairs in all three of
	// the factor's regimes (kept, interpolated, slowed by 8).
	llama3.Llama3 = &synth.Llama3Rope{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OrigContext: 64}
	yarn := base
	yarn.Yarn, yarn.Seed = &synth.YarnRope{Factor: 4, OrigContext: 64}, 12
	qwen3 := base
	qwen3.Arch, qwen3.HeadDim, qwen3.Heads, qwen3.KVHeads, qwen3.Seed = "qwen3", 16, 4, 2, 13 // q width 64 != dim 48
	mistral := base
	mistral.SlidingWindow, mistral.Seed = 12, 14
	fkv := freqkv.Config{CacheSize: 24, Sink: 2, Recent: 3, Ratio: 0.5}
	win := freqkv.Config{CacheSize: 16, Sink: 2}
	full := freqkv.Config{CacheSize: 256}
	cases := []struct {
		name     string
		spec     synth.Spec
		policy   string
		cfg      freqkv.Config
		refCfg   freqkv.Config // the reference's, when its policy differs
		refFull  bool          // the reference runs a full (masked) cache
		tokens   int
		minComps int
	}{
		{name: "llama3-full", spec: llama3, policy: "full", cfg: full, tokens: 60},
		{name: "llama3-window", spec: llama3, policy: "window", cfg: win, tokens: 50},
		{name: "llama3-freqkv", spec: llama3, policy: "freqkv", cfg: fkv, tokens: 70, minComps: 3},
		{name: "yarn-full", spec: yarn, policy: "full", cfg: full, tokens: 60},
		{name: "yarn-freqkv", spec: yarn, policy: "freqkv", cfg: fkv, tokens: 70, minComps: 3},
		{name: "qwen3-full", spec: qwen3, policy: "full", cfg: full, tokens: 40},
		{name: "qwen3-window", spec: qwen3, policy: "window", cfg: win, tokens: 50},
		{name: "qwen3-freqkv", spec: qwen3, policy: "freqkv", cfg: fkv, tokens: 70, minComps: 3},
		// Sliding-window layers keep a window cache whatever the policy.
		{name: "mistral-swa-full", spec: mistral, policy: "full", cfg: full, refFull: true, tokens: 50},
		{name: "mistral-swa-freqkv", spec: mistral, policy: "freqkv", cfg: fkv, refFull: true, tokens: 50},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.gguf")
			require.NoError(t, synth.Write(path, tc.spec))
			m := load(t, dev, path, "")
			f, err := gguf.Open(path)
			require.NoError(t, err)
			defer f.Close()
			ref, err := cpuref.Load(f)
			require.NoError(t, err)
			refPolicy, refCfg := tc.policy, tc.cfg
			if tc.refFull {
				refPolicy, refCfg = "full", full
			}
			sess, err := ref.NewSession(refPolicy, refCfg)
			require.NoError(t, err)
			ctx, err := m.NewContext(llama.CacheOptions{Policy: tc.policy, FreqKV: tc.cfg, Context: tc.cfg.CacheSize, KV: engine.F32, MaxChunk: 7, Logits: true})
			require.NoError(t, err)
			defer ctx.Release()
			tokens := make([]int32, tc.tokens)
			for i := range tokens {
				tokens[i] = int32((i*37 + 11) % tc.spec.Vocab)
			}
			got, err := ctx.AllLogits(tokens)
			require.NoError(t, err)
			require.Len(t, got, len(tokens))
			worst := 0.0
			for i, tok := range tokens {
				want, err := sess.Forward(int(tok))
				require.NoError(t, err)
				e := relErr(got[i], want)
				worst = max(worst, e)
				require.LessOrEqual(t, e, 1e-4, "token %d", i)
			}
			t.Logf("max relative logit error %.2e over %d tokens, %d compressions", worst, len(tokens), ctx.Cache.Stats().Compressions)
			require.GreaterOrEqual(t, ctx.Cache.Stats().Compressions, tc.minComps)
		})
	}
}
