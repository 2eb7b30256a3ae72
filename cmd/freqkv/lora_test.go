package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/cpuref"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/lora"
	"github.com/freqkv/freqkv/model/synth"
	"github.com/freqkv/freqkv/trainref"
	"github.com/stretchr/testify/require"
)

func loraSpec() synth.Spec {
	return synth.Spec{Arch: "llama", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 270,
		Context: 64, WeightType: ggml.F32, RopeBase: 10000, Seed: 21}
}

// loraFixture writes a synthetic base model and adapters for it: zero (B = 0, full tensors
// equal to the base's) and random (B random, embedding and norms changed).
func loraFixture(t *testing.T, wt ggml.Type) (dir, base, zero, random string, m *cpuref.Model) {
	t.Helper()
	dir = t.TempDir()
	base = filepath.Join(dir, "base.gguf")
	spec := loraSpec()
	spec.WeightType = wt
	require.NoError(t, synth.Write(base, spec))
	f, err := gguf.Open(base)
	require.NoError(t, err)
	defer f.Close()
	m, err = cpuref.Load(f)
	require.NoError(t, err)
	write := func(name string, bscale, shift float64) string {
		p, err := trainref.NewLoRA(m, trainref.LoRAOptions{Rank: 4, Alpha: 8, Embedding: true, Norms: true, BScale: bscale, Seed: 3})
		require.NoError(t, err)
		for n, v := range p.Tensors {
			if !strings.Contains(n, ".lora_") {
				for i := range v {
					v[i] += shift * math.Cos(float64(i))
				}
			}
		}
		a, err := p.Adapter(m)
		require.NoError(t, err)
		var buf bytes.Buffer
		require.NoError(t, lora.Write(&buf, a))
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
		return path
	}
	return dir, base, write("zero.gguf", 0, 0), write("random.gguf", 0.05, 0.05), m
}

func fileHash(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

func TestMergeCLI(t *testing.T) {
	dir, base, _, random, m := loraFixture(t, ggml.F32)
	before := fileHash(t, base)
	out := filepath.Join(dir, "merged.gguf")
	r := runCLI(t, "merge", "-m", base, "--lora", random, "-o", out)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, "wrote "+out)
	require.Equal(t, before, fileHash(t, base), "merge modified its input")

	// The merged model's logits are the base's with the adapter applied (trainref's LoRA path).
	a, err := lora.Open(random)
	require.NoError(t, err)
	p, err := trainref.ParamsFromAdapter(a)
	require.NoError(t, err)
	toks := []int{1, 30, 200, 7, 7, 64, 150, 3, 99, 12, 40, 41, 42, 260, 5}
	spec := kvcache.Spec{Kind: kvcache.Full, Size: len(toks)}
	want, err := trainref.Logits(m, p, toks, spec)
	require.NoError(t, err)
	f, err := gguf.Open(out)
	require.NoError(t, err)
	defer f.Close()
	mm, err := cpuref.Load(f)
	require.NoError(t, err)
	got, err := trainref.Logits(mm, trainref.Params{}, toks, spec)
	require.NoError(t, err)
	baseLogits, err := trainref.Logits(m, trainref.Params{}, toks, spec)
	require.NoError(t, err)
	var diff, moved float64
	for i := range want {
		for j := range want[i] {
			diff = math.Max(diff, math.Abs(got[i][j]-want[i][j]))
			moved = math.Max(moved, math.Abs(baseLogits[i][j]-want[i][j]))
		}
	}
	t.Logf("merged model vs base+LoRA: max |logit diff| %.2e (the adapter moves logits by %.2e)", diff, moved)
	require.Less(t, diff, 1e-5)
	require.Greater(t, moved, 1e-2)

	// An adapter for another model: one line naming the tensor, exit 1, no output written.
	otherSpec := loraSpec()
	otherSpec.KVHeads = 4
	other := filepath.Join(dir, "other.gguf")
	require.NoError(t, synth.Write(other, otherSpec))
	out2 := filepath.Join(dir, "never.gguf")
	r = runCLI(t, "merge", "-m", other, "--lora", random, "-o", out2)
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stderr, "blk.0.attn_k.weight.lora_a")
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	t.Log(strings.TrimSpace(r.stderr))
	_, err = os.Stat(out2)
	require.True(t, os.IsNotExist(err), "a failed merge left %s", out2)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		require.False(t, strings.HasSuffix(e.Name(), ".tmp"), "temporary file %s left behind", e.Name())
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"merge", "-m", base, "--lora", random, "-o", base}, 2, "is also -m"},
		{[]string{"merge", "-m", base, "--lora", random, "-o", random}, 2, "is also --lora"},
		{[]string{"merge", "-m", base, "--lora", random}, 2, "need -m BASE"},
		{[]string{"merge", "-m", base, "--lora", filepath.Join(dir, "missing.gguf"), "-o", out2}, 2, "--lora"},
		{[]string{"merge", "-m", base, "--lora", base, "-o", out2}, 1, "not an adapter"},
		{[]string{"merge", "-m", base, "--lora", random, "--lora-scale", "nan", "-o", out2}, 2, "--lora-scale"},
		{[]string{"perplexity", "-m", base, "--tokens", base, "--lora-scale", "0.5"}, 2, "--lora-scale needs --lora"},
		{[]string{"generate", "-m", base, "--lora", filepath.Join(dir, "missing.gguf")}, 2, "--lora"},
		{[]string{"info", random}, 2, "is a LoRA adapter, not a model"},
	} {
		r := runCLI(t, c.args...)
		require.Equal(t, c.code, r.code, "%v: %s", c.args, r.stderr)
		require.Contains(t, r.stderr, c.want, c.args)
		require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
		t.Log(strings.TrimSpace(r.stderr))
	}
	require.Equal(t, before, fileHash(t, base), "a failed merge modified its input")
}

// --lora on the GPU path: an adapter that changes nothing gives the base's NLL exactly, and a
// random one gives exactly the NLL of the model 'freqkv merge' writes, on F32 and on Q4_0
// bases (whose adapted matrices become F16).
func TestLoRAFlag(t *testing.T) {
	gputest.Device(t)
	for _, wt := range []ggml.Type{ggml.F32, ggml.Q4_0} {
		t.Run(wt.String(), func(t *testing.T) { testLoRAFlag(t, wt) })
	}
}

func testLoRAFlag(t *testing.T, wt ggml.Type) {
	dir, base, zero, random, _ := loraFixture(t, wt)
	merged := filepath.Join(dir, "merged.gguf")
	r := runCLI(t, "merge", "-m", base, "--lora", random, "-o", merged)
	require.Equal(t, 0, r.code, r.stderr)
	var ids []string
	for i := range 48 {
		ids = append(ids, fmt.Sprint((i*37+11)%270))
	}
	tokens := filepath.Join(dir, "tokens.txt")
	require.NoError(t, os.WriteFile(tokens, []byte(strings.Join(ids, " ")), 0o644))
	nll := func(model string, extra ...string) float64 {
		args := append([]string{"perplexity", "-m", model, "--tokens", tokens, "--ctx", "40", "--stride", "0",
			"--cache", "freqkv", "--cache-size", "16", "--kv", "f32", "--json"}, extra...)
		r := runCLI(t, args...)
		require.Equal(t, 0, r.code, r.stderr)
		var out struct {
			MeanNLL float64 `json:"mean_nll"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
		return out.MeanNLL
	}
	b := nll(base)
	require.Equal(t, b, nll(base, "--lora", zero), "a zero adapter changed the NLL")
	require.Equal(t, b, nll(base, "--lora", random, "--lora-scale", "0"), "scale 0 changed the NLL")
	withLoRA := nll(base, "--lora", random)
	require.Equal(t, nll(merged), withLoRA, "--lora and the merged model differ")
	require.NotEqual(t, b, withLoRA)
	t.Logf("mean NLL: base %.6f, with the random adapter %.6f (= merged model)", b, withLoRA)
}
