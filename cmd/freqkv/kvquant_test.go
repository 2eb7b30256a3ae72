package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"testing"

	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/synth"
	"github.com/stretchr/testify/require"
)

// Quantised KV caches under every policy: perplexity stays close to f16's for q8_0 and
// q4_0 values (stories260K, 512 tokens, N=128), and --json says what was stored.
func TestPerplexityQuantisedKV(t *testing.T) {
	gputest.Device(t)
	model := shareddata.Path(t, "models/stories260K.bin")
	tok := shareddata.Path(t, "models/tok512.bin")
	text := shareddata.Path(t, "text/tinystories-valid-a.txt")
	ppl := func(cache string, kv ...string) (float64, string) {
		args := append([]string{"perplexity", "-m", model, "--tokenizer", tok, "--text", text, "--ctx", "512", "--stride", "0",
			"--cache", cache, "--cache-size", "128", "--json"}, kv...)
		if cache == "full" {
			args[len(args)-len(kv)-2] = "512"
		}
		r := runCLI(t, args...)
		require.Equal(t, 0, r.code, r.stderr)
		var out struct {
			PPL   float64 `json:"ppl"`
			Cache struct {
				KV string `json:"kv"`
			} `json:"cache"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
		require.False(t, math.IsNaN(out.PPL) || math.IsInf(out.PPL, 0))
		return out.PPL, out.Cache.KV
	}
	for _, cache := range []string{"full", "window", "freqkv", "h2o"} {
		base, kv := ppl(cache, "--kv", "f16")
		require.Equal(t, "f16", kv)
		q8, kv := ppl(cache, "--kv", "q8_0")
		require.Equal(t, "q8_0", kv)
		mixed, kv := ppl(cache, "--kv", "q8_0", "--kv-v", "q4_0")
		require.Equal(t, "q8_0/q4_0", kv)
		// 8-bit keys and values cost about 1% here, 4-bit values about 2% (this
		// 260K-parameter model with head dim 8, blocks spanning 4 heads; README)
		tol := 0.02
		if cache == "h2o" {
			// an eviction compacts each head on its own, so with head dim 8 a block then
			// holds rows of different tokens and is requantised with a new scale
			tol = 0.05
		}
		require.InDelta(t, base, q8, tol*base, "%s: f16 %.4f, q8_0 %.4f", cache, base, q8)
		require.InDelta(t, base, mixed, 0.05*base, "%s: f16 %.4f, q8_0/q4_0 %.4f", cache, base, mixed)
		t.Logf("%s: perplexity f16 %.4f, q8_0 %.4f, keys q8_0 values q4_0 %.4f", cache, base, q8, mixed)
	}
}

// A quantised cache on a head dim that would split a block: one line with the sizes,
// naming the flag the type came from.
func TestQuantisedKVBadHeadDim(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hd48.gguf")
	require.NoError(t, synth.Write(path, synth.Spec{Arch: "llama", Dim: 96, Layers: 1, Heads: 2, KVHeads: 2, FFN: 64, Vocab: 270,
		Context: 64, WeightType: ggml.F32, RopeBase: 10000, Seed: 5}))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--kv", "q8_0"}, "--kv q8_0: q8_0 storage quantises blocks of 32 channels; head dim 48 is not a multiple of 32 (2 KV heads x 48)"},
		{[]string{"--kv-v", "q4_0", "--kv", "f32"}, "--kv-v q4_0: q4_0 storage quantises blocks of 32 channels; head dim 48"},
		{[]string{"--kv-k", "q4_0"}, "--kv-k q4_0: q4_0 storage"},
	} {
		r := runCLI(t, append([]string{"generate", "-m", path, "-n", "2", "-p", "x"}, c.args...)...)
		require.Equal(t, 2, r.code, "%v: %s", c.args, r.stderr)
		require.Contains(t, r.stderr, c.want, "%v", c.args)
	}
}
