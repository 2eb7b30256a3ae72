package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/stretchr/testify/require"
)

func stories(t *testing.T) []string {
	return []string{"-m", shareddata.Path(t, "models/stories260K.bin"), "--tokenizer", shareddata.Path(t, "models/tok512.bin")}
}

func requirePNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Greater(t, img.Bounds().Dx(), 100)
}

func TestEvalPasskey(t *testing.T) {
	gputest.Device(t)
	out := filepath.Join(t.TempDir(), "pk.png")
	args := append([]string{"eval", "passkey", "--lengths", "170,200", "--depths", "0,1", "--trials", "1",
		"--cache", "full,window,freqkv", "--cache-size", "128", "--kv", "f32", "-o", out, "--json"}, stories(t)...)
	r := runCLI(t, args...)
	require.Equal(t, 0, r.code, r.stderr)
	var got struct {
		Caches []struct {
			Name     string
			Accuracy float64
			Cache    map[string]any
			Cells    []struct {
				Length, Trials int
				Depth          float64
				KeyNLL         float64 `json:"key_nll"`
			}
			Trials []struct{ Key, Output string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Len(t, got.Caches, 3)
	for i, name := range []string{"full", "window", "freqkv"} {
		c := got.Caches[i]
		require.Equal(t, name, c.Name)
		require.Equal(t, name, c.Cache["policy"])
		require.Len(t, c.Cells, 4)
		require.Len(t, c.Trials, 4)
		for _, cell := range c.Cells {
			require.Equal(t, 1, cell.Trials)
			require.Greater(t, cell.KeyNLL, 0.0)
		}
	}
	// Every cache answers the same prompts.
	for i := range got.Caches[0].Trials {
		require.Equal(t, got.Caches[0].Trials[i].Key, got.Caches[2].Trials[i].Key)
	}
	requirePNG(t, out)

	// The text table.
	r = runCLI(t, append([]string{"eval", "passkey", "--lengths", "170", "--depths", "0.5", "--trials", "1", "--cache", "freqkv"}, stories(t)...)...)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "freqkv: accuracy")
}

func TestEvalRepeatAndCurve(t *testing.T) {
	gputest.Device(t)
	text := shareddata.Path(t, "text/tinystories-valid-a.txt")
	out := filepath.Join(t.TempDir(), "r.png")
	r := runCLI(t, append([]string{"eval", "repeat", "--text", text, "--segment", "32", "--gaps", "0,160", "--trials", "2",
		"--cache", "full,window", "--cache-size", "128", "--kv", "f32", "-o", out, "--json"}, stories(t)...)...)
	require.Equal(t, 0, r.code, r.stderr)
	var rep struct {
		Caches []struct {
			Name   string
			Points []struct {
				Gap, Trials int
				First       float64 `json:"first_nll"`
				Repeat      float64 `json:"repeat_nll"`
				Control     float64 `json:"control_nll"`
				Gain        float64
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Len(t, rep.Caches, 2)
	full, win := rep.Caches[0].Points, rep.Caches[1].Points
	require.Len(t, full, 2)
	for i := range full {
		require.Equal(t, 2, full[i].Trials)
		require.Greater(t, full[i].First, 0.0)
		require.InDelta(t, full[i].Control-full[i].Repeat, full[i].Gain, 1e-12)
	}
	// Sequences shorter than the window's N are the same for both caches.
	require.InDelta(t, full[0].Repeat, win[0].Repeat, 2e-3)
	requirePNG(t, out)

	out = filepath.Join(t.TempDir(), "c.png")
	r = runCLI(t, append([]string{"eval", "ppl-curve", "--text", text, "--ctx", "384", "--bucket", "128", "--windows", "1",
		"--cache", "full,freqkv,h2o,freqkv:keep=high:scale=energy", "--cache-size", "128", "--kv", "f32", "-o", out, "--json"}, stories(t)...)...)
	require.Equal(t, 0, r.code, r.stderr)
	var cur struct {
		Caches []struct {
			Name    string
			Cache   map[string]any
			Buckets []struct {
				Start, End, Tokens int
				MeanNLL            float64 `json:"mean_nll"`
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &cur))
	require.Len(t, cur.Caches, 4)
	fb, qb := cur.Caches[0].Buckets, cur.Caches[1].Buckets
	require.Len(t, fb, 3)
	// The first bucket ends at N: no compression or eviction has happened yet.
	for _, c := range cur.Caches[1:] {
		require.InDelta(t, fb[0].MeanNLL, c.Buckets[0].MeanNLL, 2e-3, c.Name)
	}
	require.Equal(t, "h2o", cur.Caches[2].Name)
	require.Equal(t, "freqkv", cur.Caches[3].Cache["policy"])
	require.Equal(t, "high", cur.Caches[3].Cache["keep"])
	require.Equal(t, "energy", cur.Caches[3].Cache["scale"])
	// Keeping the highest frequencies loses the span's content: much worse than the method.
	require.Greater(t, cur.Caches[3].Buckets[2].MeanNLL, qb[2].MeanNLL+0.5)
	require.Equal(t, 128, fb[2].Tokens)
	requirePNG(t, out)
}

func TestEvalBadInput(t *testing.T) {
	model := stories(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	text := shareddata.Path(t, "text/tinystories-valid-a.txt")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval"}, "name an evaluation"},
		{[]string{"eval", "needle"}, "unknown evaluation"},
		{[]string{"eval", "passkey", "--depths", "0,1.5"}, "outside [0, 1]"},
		{[]string{"eval", "passkey", "--depths", "-0.1"}, "outside [0, 1]"},
		{[]string{"eval", "passkey", "--lengths", "16"}, "below the"},
		{[]string{"eval", "passkey", "--filler", empty}, "is empty"},
		{[]string{"eval", "passkey", "--cache", "full,lru"}, "a policy is"},
		{[]string{"eval", "passkey", "-o", "x.jpg"}, "PNG"},
		{[]string{"eval", "passkey", "--cache", "freqkv:keep=mid"}, "--keep"},
		{[]string{"eval", "passkey", "--cache", "window:ratio=0.5"}, "has no ratio"},
		{[]string{"eval", "passkey", "--cache", "h2o:scale=energy"}, "has no scale"},
		{[]string{"eval", "passkey", "--cache", "freqkv:ratio"}, "NAME=VALUE"},
		{[]string{"eval", "passkey", "--cache", "freqkv:ratio=1.5"}, "ratio"},
		{[]string{"perplexity", "--text", text, "--cache", "window", "--keep", "high"}, "--keep applies to --cache freqkv"},
		{[]string{"perplexity", "--text", text, "--cache", "freqkv", "--scale", "loud"}, "--scale"},
		{[]string{"finetune", "--text", text, "-o", filepath.Join(dir, "a.gguf"), "--cache", "h2o"}, "inference only"},
		{[]string{"finetune", "--text", text, "-o", filepath.Join(dir, "a.gguf"), "--cache", "freqkv", "--scale", "energy"}, "inference-only"},
		{[]string{"eval", "repeat", "--text", text, "--gaps", "100000000"}, "need"},
		{[]string{"eval", "repeat", "--text", text, "--gaps", "-5"}, "negative"},
		{[]string{"eval", "ppl-curve", "--text", text, "--ctx", "0"}, "positive"},
	} {
		r := runCLI(t, append(c.args, model...)...)
		require.Equal(t, 2, r.code, "%v: %s", c.args, r.stderr)
		require.Contains(t, r.stderr, c.want, c.args)
		if len(c.args) > 1 {
			require.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, r.stderr)
		}
	}
}

// The ablation switches and the h2o policy reach every command through the cache flags,
// and --json reports them.
func TestAblationAndH2OFlags(t *testing.T) {
	gputest.Device(t)
	text := shareddata.Path(t, "text/tinystories-valid-a.txt")
	type out struct {
		Cache        map[string]any
		Compressions int
		MeanNLL      float64 `json:"mean_nll"`
	}
	run := func(extra ...string) out {
		r := runCLI(t, append(append([]string{"perplexity", "--text", text, "--ctx", "300", "--stride", "0", "--cache-size", "128", "--kv", "f32", "--json"}, extra...), stories(t)...)...)
		require.Equal(t, 0, r.code, r.stderr)
		var o out
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &o))
		return o
	}
	h := run("--cache", "h2o", "--recent", "16")
	require.Equal(t, "h2o", h.Cache["policy"])
	require.EqualValues(t, 16, h.Cache["recent"])
	require.Greater(t, h.Compressions, 1)
	base := run("--cache", "freqkv")
	require.Equal(t, "low", base.Cache["keep"])
	require.Equal(t, "amplitude", base.Cache["scale"])
	high := run("--cache", "freqkv", "--keep", "high")
	require.Equal(t, "high", high.Cache["keep"])
	energy := run("--cache", "freqkv", "--scale", "energy")
	require.Equal(t, "energy", energy.Cache["scale"])
	require.Greater(t, high.MeanNLL, base.MeanNLL)
	require.NotEqual(t, energy.MeanNLL, base.MeanNLL)

	pl := run("--cache", "freqkv", "--ratio-per-layer", "0.25,0.5,0.5,0.5,0.75", "--cache-size-per-layer", "64,64,128,128,128")
	require.Equal(t, []any{0.25, 0.5, 0.5, 0.5, 0.75}, pl.Cache["ratio_per_layer"])
	require.Equal(t, []any{64.0, 64.0, 128.0, 128.0, 128.0}, pl.Cache["size_per_layer"])
	require.Greater(t, pl.Compressions, 2)
	for _, bad := range [][]string{
		{"--ratio-per-layer", "0.5,0.5"},            // 2 of 5 layers
		{"--ratio-per-layer", "0.5,x"},              // not a number
		{"--cache-size-per-layer", "64,64,64,64,3"}, // no span
	} {
		r := runCLI(t, append(append([]string{"perplexity", "--text", text, "--ctx", "300", "--stride", "0", "--cache", "freqkv"}, bad...), stories(t)...)...)
		require.Equal(t, 2, r.code, "%v: %s", bad, r.stderr)
		require.Contains(t, r.stderr, bad[0])
	}

	r := runCLI(t, "info", shareddata.Path(t, "models/stories260K.gguf"), "--json")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, `"keep": "low"`)
	require.Contains(t, r.stdout, `"scale": "amplitude"`)
}
