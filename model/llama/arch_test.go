package llama_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/kvcache"
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
// window, phi3's fused projections, gemma2 (embedding scale, GELU, post-norms,
// softcaps, a window on alternate layers), gemma3 (Q/K norms, a global layer
// every 6th, the local layers' own rope base).
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
	phi3 := base
	// phi3's sliding window is ignored, as llama.cpp ignores it (with a warning).
	phi3.Arch, phi3.SlidingWindow, phi3.Seed = "phi3", 12, 15
	// Phi-3 128K's longrope: short factors up to 20 positions, long ones past.
	longrope := phi3
	longrope.LongRope, longrope.Seed = &synth.LongRope{OrigContext: 20}, 16
	// Gemma 2: q width 64 != dim 48, tied, the window on layer 0 (and 2), both
	// softcaps low enough to bite on these weights.
	gemma2 := base
	gemma2.Arch, gemma2.Layers, gemma2.HeadDim, gemma2.Heads, gemma2.KVHeads, gemma2.Tied, gemma2.Seed = "gemma2", 3, 16, 4, 2, true, 17
	gemma2.SlidingWindow, gemma2.AttnSoftcap, gemma2.FinalSoftcap = 12, 0.5, 1.5
	// Gemma 3: Q/K norms, layers 0-4 and 6 local (base 10000, unscaled), layer 5
	// global (base 1e6, linear scaling by 4).
	gemma3 := base
	gemma3.Arch, gemma3.Dim, gemma3.Layers, gemma3.HeadDim, gemma3.Heads, gemma3.KVHeads, gemma3.FFN, gemma3.Tied, gemma3.Seed = "gemma3", 32, 7, 16, 2, 1, 48, true, 18
	gemma3.SlidingWindow, gemma3.RopeBase, gemma3.LinearRope = 10, 1e6, 4
	fkv := kvcache.Spec{Kind: kvcache.FreqKV, Size: 24, Sink: 2, Recent: 3, Ratio: 0.5, Storage: engine.F32}
	win := kvcache.Spec{Kind: kvcache.Window, Size: 16, Sink: 2, Storage: engine.F32}
	full := kvcache.Spec{Kind: kvcache.Full, Size: 256, Storage: engine.F32}
	cases := []struct {
		name     string
		spec     synth.Spec
		cache    kvcache.Spec
		refFull  bool // the reference runs a full (masked) cache
		tokens   int
		minComps int
	}{
		{name: "llama3-full", spec: llama3, cache: full, tokens: 60},
		{name: "llama3-window", spec: llama3, cache: win, tokens: 50},
		{name: "llama3-freqkv", spec: llama3, cache: fkv, tokens: 70, minComps: 3},
		{name: "yarn-full", spec: yarn, cache: full, tokens: 60},
		{name: "yarn-freqkv", spec: yarn, cache: fkv, tokens: 70, minComps: 3},
		{name: "qwen3-full", spec: qwen3, cache: full, tokens: 40},
		{name: "qwen3-window", spec: qwen3, cache: win, tokens: 50},
		{name: "qwen3-freqkv", spec: qwen3, cache: fkv, tokens: 70, minComps: 3},
		// Sliding-window layers keep a window cache whatever the policy.
		{name: "mistral-swa-full", spec: mistral, cache: full, refFull: true, tokens: 50},
		{name: "mistral-swa-freqkv", spec: mistral, cache: fkv, refFull: true, tokens: 50},
		{name: "phi3-full", spec: phi3, cache: full, tokens: 40},
		{name: "phi3-window", spec: phi3, cache: win, tokens: 50},
		{name: "phi3-freqkv", spec: phi3, cache: fkv, tokens: 70, minComps: 3},
		{name: "phi3-longrope-full", spec: longrope, cache: full, tokens: 40},
		{name: "phi3-longrope-window-short", spec: longrope, cache: win, tokens: 50},
		{name: "phi3-longrope-freqkv-long", spec: longrope, cache: fkv, tokens: 70, minComps: 3},
		// Local layers keep a window of 12 whatever the policy; global ones the policy.
		{name: "gemma2-full", spec: gemma2, cache: full, tokens: 40},
		{name: "gemma2-window", spec: gemma2, cache: win, tokens: 50},
		{name: "gemma2-freqkv", spec: gemma2, cache: fkv, tokens: 70, minComps: 3},
		{name: "gemma3-full", spec: gemma3, cache: full, tokens: 40},
		{name: "gemma3-window", spec: gemma3, cache: win, tokens: 50},
		{name: "gemma3-freqkv", spec: gemma3, cache: fkv, tokens: 70, minComps: 3},
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
			refCache := tc.cache
			if tc.refFull {
				refCache = full
			}
			sess, err := ref.NewSession(refCache)
			require.NoError(t, err)
			ctx, err := m.NewContext(llama.ContextOptions{Cache: tc.cache, MaxChunk: 7, Logits: true})
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

// TestKQuantParity: K-quant (and Q4_1, Q5_0, Q5_1, IQ4_NL) models run natively (no conversion at load,
// device weight bytes = the file's tensor bytes) and give the float64
// reference's logits, through the prefill (tiled) and decode kernels.
func TestKQuantParity(t *testing.T) {
	dev := gputest.Device(t)
	for _, wt := range []ggml.Type{ggml.Q4_K, ggml.Q5_K, ggml.Q6_K, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.IQ4_NL} {
		t.Run(wt.String(), func(t *testing.T) {
			spec := synth.Spec{Arch: "llama", Dim: 256, Layers: 2, Heads: 4, KVHeads: 2, FFN: 512, Vocab: 300, Context: 256, WeightType: wt, RopeBase: 10000, Seed: 21}
			path := filepath.Join(t.TempDir(), "m.gguf")
			require.NoError(t, synth.Write(path, spec))
			m := load(t, dev, path, "")
			f, err := gguf.Open(path)
			require.NoError(t, err)
			defer f.Close()
			var fileBytes uint64
			for _, ti := range f.Tensors {
				fileBytes += ti.Bytes()
			}
			require.Empty(t, m.Converted)
			require.Equal(t, fileBytes, uint64(m.WeightBytes), "device weights = the file's tensor bytes")
			ref, err := cpuref.Load(f)
			require.NoError(t, err)
			cfg := kvcache.Spec{Kind: kvcache.FreqKV, Size: 24, Sink: 2, Recent: 3, Ratio: 0.5, Storage: engine.F32}
			sess, err := ref.NewSession(cfg)
			require.NoError(t, err)
			ctx, err := m.NewContext(llama.ContextOptions{Cache: cfg, MaxChunk: 7, Logits: true})
			require.NoError(t, err)
			defer ctx.Release()
			tokens := make([]int32, 40)
			for i := range tokens {
				tokens[i] = int32((i*37 + 11) % spec.Vocab)
			}
			// The prompt in chunks of 7 (tiled kernels), then single tokens (decode kernels).
			got, err := ctx.AllLogits(tokens[:30])
			require.NoError(t, err)
			for _, tok := range tokens[30:] {
				l, err := ctx.Logits([]int32{tok})
				require.NoError(t, err)
				got = append(got, l)
			}
			worst := 0.0
			for i, tok := range tokens {
				want, err := sess.Forward(int(tok))
				require.NoError(t, err)
				e := relErr(got[i], want)
				worst = max(worst, e)
				require.LessOrEqual(t, e, 1e-4, "token %d", i)
			}
			t.Logf("%s: max relative logit error %.2e over %d tokens, %d compressions, %d weight bytes", wt, worst, len(tokens), ctx.Cache.Stats().Compressions, m.WeightBytes)
		})
	}
}

// TestKQuantBadScale: a super-block with a non-finite scale is an error
// naming the tensor, not a model that computes NaN.
func TestKQuantBadScale(t *testing.T) {
	dev := gputest.Device(t)
	spec := synth.Spec{Arch: "llama", Dim: 256, Layers: 1, Heads: 4, KVHeads: 2, FFN: 256, Vocab: 272, Context: 64, WeightType: ggml.Q6_K, RopeBase: 10000, Seed: 2}
	path := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, synth.Write(path, spec))
	f, err := gguf.Open(path)
	require.NoError(t, err)
	ti, ok := f.Tensor("blk.0.ffn_up.weight")
	require.True(t, ok)
	at := int64(f.DataOffset + ti.Offset + 3*210 + 208) // super-block 3's d
	f.Close()
	file, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = file.WriteAt([]byte{0x00, 0x7e}, at) // NaN
	require.NoError(t, err)
	require.NoError(t, file.Close())
	f, err = llama.Open(path, llama.LoadOptions{})
	require.NoError(t, err)
	defer f.Close()
	_, err = llama.Load(dev, f, llama.LoadOptions{})
	require.ErrorContains(t, err, `tensor "blk.0.ffn_up.weight": Q6_K block 3 has a non-finite scale`)
}
