package llama_test

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/cpuref"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/synth"
	"github.com/stretchr/testify/require"
)

func readTokens(t *testing.T, path string) []int32 {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []int32
	for _, f := range strings.Fields(string(b)) {
		v, err := strconv.Atoi(f)
		require.NoError(t, err)
		out = append(out, int32(v))
	}
	return out
}

func load(t *testing.T, dev *engine.Device, path, tok string) *llama.Model {
	f, err := llama.Open(path, llama.LoadOptions{Tokenizer: tok})
	require.NoError(t, err)
	m, err := llama.Load(dev, f, llama.LoadOptions{})
	require.NoError(t, err)
	t.Cleanup(m.Release)
	return m
}

// TestStories260KGreedy: llama2.c's own greedy output, exactly, from both
// the llama2.c checkpoint and the GGUF conversion, full cache.
func TestStories260KGreedy(t *testing.T) {
	dev := gputest.Device(t)
	want := readTokens(t, shareddata.Path(t, "models/stories260K.greedy256.tokens"))
	text, err := os.ReadFile(shareddata.Path(t, "models/stories260K.greedy256.txt"))
	require.NoError(t, err)
	for _, src := range []struct{ model, tok string }{
		{"models/stories260K.bin", "models/tok512.bin"},
		{"models/stories260K.gguf", ""},
	} {
		t.Run(filepath.Base(src.model), func(t *testing.T) {
			tok := ""
			if src.tok != "" {
				tok = shareddata.Path(t, src.tok)
			}
			m := load(t, dev, shareddata.Path(t, src.model), tok)
			for _, kv := range []engine.DType{engine.F32, engine.F16} {
				ctx, err := m.NewContext(llama.ContextOptions{Cache: kvcache.Spec{Kind: kvcache.Full, Size: 512, Storage: kv}})
				require.NoError(t, err)
				var got []int32
				_, err = ctx.Generate(nil, len(want), &llama.Sampler{}, false, func(tok int32) bool {
					got = append(got, tok)
					return true
				})
				require.NoError(t, err)
				ctx.Release()
				if kv == engine.F16 {
					// f16 keys may flip a near-tie late in the story; the first
					// 64 tokens must still agree.
					require.Equal(t, want[:64], got[:64], "f16 KV")
					continue
				}
				require.Equal(t, want, got)
				dec, err := m.Tok.Decode(got)
				require.NoError(t, err)
				require.Equal(t, strings.TrimSpace(string(text)), strings.TrimSpace(dec))
			}
		})
	}
}

func relErr(got []float32, want []float64) float64 {
	maxAbs, maxWant := 0.0, 0.0
	for i := range want {
		d := math.Abs(float64(got[i]) - want[i])
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		maxAbs = max(maxAbs, d)
		maxWant = max(maxWant, math.Abs(want[i]))
	}
	return maxAbs / maxWant
}

type parityCase struct {
	name   string
	spec   synth.Spec
	cache  kvcache.Spec
	tokens int
	tol    float64
}

// TestLogitsParity compares every token's logits on the GPU with the float64
// CPU reference (which shares no code with it) for each cache policy, past
// several compressions or evictions.
func TestLogitsParity(t *testing.T) {
	dev := gputest.Device(t)
	base := synth.Spec{Arch: "llama", Dim: 48, Layers: 2, Heads: 6, KVHeads: 2, FFN: 72, Vocab: 300, Context: 256, WeightType: ggml.F32, RopeBase: 10000, Seed: 7}
	qwen := base
	qwen.Arch, qwen.Dim, qwen.Heads, qwen.KVHeads, qwen.Seed = "qwen2", 64, 4, 1, 8
	tied := base
	tied.Tied, tied.Seed = true, 9
	fkv := kvcache.Spec{Kind: kvcache.FreqKV, Size: 24, Sink: 2, Recent: 3, Ratio: 0.5, Storage: engine.F32}
	var cases []parityCase
	for _, wt := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0, ggml.Q4_0} {
		s := base
		s.WeightType, s.Dim, s.FFN = wt, 96, 128 // quantised rows need multiples of 32
		cases = append(cases, parityCase{"llama-" + wt.String() + "-freqkv", s, fkv, 70, 1e-4})
	}
	cases = append(cases,
		parityCase{"llama-full", base, kvcache.Spec{Kind: kvcache.Full, Size: 256, Storage: engine.F32}, 40, 1e-4},
		parityCase{"llama-window", base, kvcache.Spec{Kind: kvcache.Window, Size: 16, Sink: 2, Storage: engine.F32}, 50, 1e-4},
		parityCase{"llama-h2o", base, kvcache.Spec{Kind: kvcache.HeavyHitter, Size: 24, Sink: 2, Recent: 3, Ratio: 0.5, Storage: engine.F32}, 70, 1e-4},
		parityCase{"qwen2-h2o-no-recent", qwen, kvcache.Spec{Kind: kvcache.HeavyHitter, Size: 20, Sink: 1, Ratio: 0.4, Storage: engine.F32}, 60, 1e-4},
		parityCase{"llama-freqkv-per-layer", base, kvcache.Spec{Kind: kvcache.FreqKV, Size: 24, Sink: 2, Recent: 3, Ratios: []float64{0.25, 0.6}, Sizes: []int{24, 15}, Storage: engine.F32}, 70, 1e-4},
		parityCase{"qwen2-freqkv", qwen, kvcache.Spec{Kind: kvcache.FreqKV, Size: 20, Sink: 1, Recent: 0, Ratio: 0.5, Storage: engine.F32}, 60, 1e-4},
		parityCase{"tied-freqkv-odd", tied, kvcache.Spec{Kind: kvcache.FreqKV, Size: 21, Sink: 4, Recent: 2, Ratio: 0.5, Storage: engine.F32}, 60, 1e-4},
	)
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
			sess, err := ref.NewSession(tc.cache)
			require.NoError(t, err)

			ctx, err := m.NewContext(llama.ContextOptions{Cache: tc.cache, MaxChunk: 7, Logits: true})
			require.NoError(t, err)
			defer ctx.Release()
			tokens := make([]int32, tc.tokens)
			for i := range tokens {
				tokens[i] = int32((i*37 + 11) % tc.spec.Vocab)
			}
			// Grouped (chunks of 7) on the GPU, token by token on the CPU.
			got, err := ctx.AllLogits(tokens)
			require.NoError(t, err)
			require.Len(t, got, len(tokens))
			worst := 0.0
			for i, tok := range tokens {
				want, err := sess.Forward(int(tok))
				require.NoError(t, err)
				e := relErr(got[i], want)
				worst = max(worst, e)
				require.LessOrEqual(t, e, tc.tol, "token %d", i)
			}
			t.Logf("max relative logit error %.2e over %d tokens, %d compressions", worst, len(tokens), ctx.Cache.Stats().Compressions)
			if tc.cache.Kind == kvcache.FreqKV || tc.cache.Kind == kvcache.HeavyHitter {
				require.GreaterOrEqual(t, ctx.Cache.Stats().Compressions, 3)
			}
		})
	}
}

// TestFreqKVGroupedEqualsTokenByToken: the grouped prefill and the
// token-by-token decode give the same logits on the GPU.
func TestFreqKVGroupedEqualsTokenByToken(t *testing.T) {
	dev := gputest.Device(t)
	spec := synth.Spec{Arch: "llama", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 311, Context: 128, WeightType: ggml.F16, RopeBase: 10000, Seed: 3}
	path := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, synth.Write(path, spec))
	m := load(t, dev, path, "")
	cfg := kvcache.Spec{Kind: kvcache.FreqKV, Size: 32, Sink: 4, Recent: 4, Ratio: 0.5}
	tokens := make([]int32, 150)
	for i := range tokens {
		tokens[i] = int32((i*13 + 5) % spec.Vocab)
	}
	// The grouped and single-token paths run different matmul kernels
	// (tiled vs per-row), so K/V differ in the last f32 bits; an f16 cache
	// can then round a value to the neighbouring half (2^-11 relative),
	// which moves logits by up to a few 1e-5. f32 caches must agree to 1e-5.
	tol := map[engine.DType]float64{engine.F32: 1e-5, engine.F16: 2e-4}
	for _, kv := range []engine.DType{engine.F32, engine.F16} {
		cfg.Storage = kv
		grouped, err := m.NewContext(llama.ContextOptions{Cache: cfg, MaxChunk: 64, Logits: true})
		require.NoError(t, err)
		all, err := grouped.AllLogits(tokens)
		require.NoError(t, err)
		grouped.Release()
		single, err := m.NewContext(llama.ContextOptions{Cache: cfg, MaxChunk: 1, Logits: true})
		require.NoError(t, err)
		for i, tok := range tokens {
			l, err := single.Logits([]int32{tok})
			require.NoError(t, err)
			want := make([]float64, len(l))
			for j, x := range all[i] {
				want[j] = float64(x)
			}
			require.LessOrEqual(t, relErr(l, want), tol[kv], "kv %s token %d", kv, i)
		}
		require.Greater(t, single.Cache.Stats().Compressions, 3)
		single.Release()
	}
}

// TestFreqKVMemoryIsConstant: device memory after 10N tokens equals memory
// after N tokens.
func TestFreqKVMemoryIsConstant(t *testing.T) {
	dev := gputest.Device(t)
	spec := synth.Spec{Arch: "llama", Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, FFN: 64, Vocab: 272, Context: 64, WeightType: ggml.F32, RopeBase: 10000, Seed: 5}
	path := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, synth.Write(path, spec))
	m := load(t, dev, path, "")
	const n = 40
	ctx, err := m.NewContext(llama.ContextOptions{Cache: kvcache.DefaultSpec(kvcache.FreqKV, n, engine.F16)})
	require.NoError(t, err)
	defer ctx.Release()
	tokens := make([]int32, n)
	for i := range tokens {
		tokens[i] = int32(i % spec.Vocab)
	}
	require.NoError(t, ctx.Prefill(tokens))
	after1 := dev.AllocatedBytes()
	for i := 0; i < 9; i++ {
		require.NoError(t, ctx.Prefill(tokens))
	}
	require.Equal(t, after1, dev.AllocatedBytes())
	require.Equal(t, 10*n, ctx.Tokens())
	require.LessOrEqual(t, ctx.Cache.Stats().Rows, n)
}

func TestBadInput(t *testing.T) {
	dev := gputest.Device(t)
	spec := synth.Spec{Arch: "llama", Dim: 32, Layers: 1, Heads: 4, KVHeads: 2, FFN: 64, Vocab: 272, Context: 32, WeightType: ggml.F32, RopeBase: 10000, Seed: 6}
	path := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, synth.Write(path, spec))
	m := load(t, dev, path, "")
	ctx, err := m.NewContext(llama.ContextOptions{Cache: kvcache.Spec{Kind: kvcache.Full, Size: 16, Storage: engine.F32}})
	require.NoError(t, err)
	defer ctx.Release()
	err = ctx.Prefill(make([]int32, 17))
	require.ErrorIs(t, err, kvcache.ErrContextFull)
	require.ErrorContains(t, err, "17 new tokens after 0 do not fit the full cache of 16 tokens")
	ctx.Reset()
	require.NoError(t, ctx.Prefill(make([]int32, 16)))
	_, err = ctx.Logits([]int32{1})
	require.ErrorIs(t, err, kvcache.ErrContextFull)
	ctx.Reset()
	err = ctx.Prefill([]int32{1, 272})
	require.ErrorContains(t, err, "out of range")
	var se *kvcache.SpecError
	_, err = m.NewContext(llama.ContextOptions{Cache: kvcache.Spec{Kind: kvcache.FreqKV, Size: 8, Sink: 4, Recent: 4, Ratio: 0.5, Storage: engine.F32}})
	require.ErrorAs(t, err, &se)
	require.Equal(t, []kvcache.Param{kvcache.ParamSink, kvcache.ParamRecent, kvcache.ParamSize}, se.Params)
	_, err = m.NewContext(llama.ContextOptions{Cache: kvcache.Spec{Kind: 42, Size: 8, Storage: engine.F32}})
	require.ErrorContains(t, err, "unknown cache policy")
	var big *llama.ChunkTooLargeError
	_, err = m.NewContext(llama.ContextOptions{Cache: kvcache.Spec{Kind: kvcache.Full, Size: 16, Storage: engine.F32}, MaxChunk: 1 << 30})
	require.ErrorAs(t, err, &big)
	require.Positive(t, big.Max)
	require.Less(t, big.Max, 1<<30)
}

// TestSamplingSeed: a seed makes sampled runs reproducible token for token,
// and another seed changes them.
func TestSamplingSeed(t *testing.T) {
	dev := gputest.Device(t)
	m := load(t, dev, shareddata.Path(t, "models/stories260K.gguf"), "")
	run := func(seed uint64) []int32 {
		ctx, err := m.NewContext(llama.ContextOptions{Cache: kvcache.DefaultSpec(kvcache.FreqKV, 64, engine.F32)})
		require.NoError(t, err)
		defer ctx.Release()
		var got []int32
		s := &llama.Sampler{Temperature: 1, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1, Seed: seed}
		_, err = ctx.Generate(nil, 100, s, false, func(tok int32) bool { got = append(got, tok); return true })
		require.NoError(t, err)
		return got
	}
	a, b, c := run(42), run(42), run(43)
	require.Equal(t, a, b)
	require.NotEqual(t, a, c)
	require.Len(t, a, 100)
}
