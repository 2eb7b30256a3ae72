package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/stretchr/testify/require"
)

// smallText writes the first n bytes of the held-out stories to a file.
func smallText(t *testing.T, n int) string {
	b, err := os.ReadFile(shareddata.Path(t, "text/tinystories-valid-a.txt"))
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "text.txt")
	require.NoError(t, os.WriteFile(p, b[:min(n, len(b))], 0o644))
	return p
}

// TestFinetuneWritesAdapterAndResumes: a short FreqKV-in-the-loop run writes
// an adapter that perplexity loads with --lora, a checkpoint and a loss
// curve; --resume continues to more steps.
func TestFinetuneWritesAdapterAndResumes(t *testing.T) {
	gputest.Device(t)
	model := shareddata.Path(t, "models/stories260K.bin")
	tok := shareddata.Path(t, "models/tok512.bin")
	text := smallText(t, 20000)
	out := filepath.Join(t.TempDir(), "a.gguf")
	base := []string{"finetune", "-m", model, "--tokenizer", tok, "--text", text, "--eval-text", text, "--ctx", "256",
		"--cache", "freqkv", "--cache-size", "96", "--lr", "3e-3", "--warmup", "1", "-o", out, "--json"}
	r := runCLI(t, append(base, "--steps", "2")...)
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var last finetuneLog
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last))
	require.Equal(t, "done", last.Event)
	require.Equal(t, 2, last.Step)
	require.Contains(t, lines[0], `"kept_layers":5`) // stories260K's activations fit the default
	for _, p := range []string{out, out + ".ckpt", strings.TrimSuffix(out, ".gguf") + ".png"} {
		_, err := os.Stat(p)
		require.NoError(t, err, p)
	}
	// resumed with every layer recomputed: the same math, less memory
	r = runCLI(t, append(base, "--steps", "3", "--resume", "--activation-memory", "0")...)
	require.Equal(t, 0, r.code, r.stderr)
	require.NotContains(t, r.stdout, `"kept_layers"`)
	require.Contains(t, r.stdout, `"step":3`)
	require.NotContains(t, r.stdout, `"event":"step","step":1,`)
	r = runCLI(t, "perplexity", "-m", model, "--tokenizer", tok, "--text", text, "--ctx", "256", "--stride", "0",
		"--cache", "freqkv", "--cache-size", "96", "--lora", out, "--json")
	require.Equal(t, 0, r.code, r.stderr)
}

func TestFinetuneBadInput(t *testing.T) {
	model := shareddata.Path(t, "models/stories260K.bin")
	tok := shareddata.Path(t, "models/tok512.bin")
	text := smallText(t, 2000)
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--text", text, "-o", model}, 2, "is also -m"},
		{[]string{"--text", text}, 2, "no output"},
		{[]string{"-o", filepath.Join(dir, "a.gguf")}, 2, "no training text"},
		{[]string{"--text", text, "-o", filepath.Join(dir, "a.gguf"), "--lr", "NaN"}, 2, "--lr"},
		{[]string{"--text", text, "-o", filepath.Join(dir, "a.gguf"), "--task", "copy"}, 2, "--task"},
		{[]string{"--text", text, "-o", filepath.Join(dir, "a.gguf"), "--activation-memory", "-1"}, 2, "--activation-memory"},
		{[]string{"--text", text, "-o", filepath.Join(dir, "a.gguf"), "--ctx", "4096"}, 2, "fewer than one training sequence"},
	} {
		if c.code == 2 && strings.Contains(c.want, "fewer") {
			gputest.Device(t)
		}
		r := runCLI(t, append([]string{"finetune", "-m", model, "--tokenizer", tok}, c.args...)...)
		require.Equal(t, c.code, r.code, "%v: %s", c.args, r.stderr)
		require.Contains(t, r.stderr, c.want)
		require.Equal(t, 1, strings.Count(r.stderr, "freqkv finetune:"), r.stderr)
	}
	_, err := os.Stat(filepath.Join(dir, "a.gguf"))
	require.True(t, os.IsNotExist(err))
}

// TestFinetuneDivergenceKeepsLastGoodCheckpoint: a loss that turns NaN or
// infinite stops the run with one line naming the step, and the checkpoint
// holds the last good one.
func TestFinetuneDivergenceKeepsLastGoodCheckpoint(t *testing.T) {
	gputest.Device(t)
	out := filepath.Join(t.TempDir(), "a.gguf")
	r := runCLI(t, "finetune", "-m", shareddata.Path(t, "models/stories260K.bin"), "--tokenizer", shareddata.Path(t, "models/tok512.bin"),
		"--text", smallText(t, 4000), "--ctx", "64", "--cache-size", "32", "--lr", "1e30", "--warmup", "0", "--steps", "4", "-o", out)
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stderr, "step 2")
	require.Contains(t, r.stderr, "holds step 1")
	require.Equal(t, 1, strings.Count(r.stderr, "freqkv finetune:"), r.stderr)
	_, err := os.Stat(out + ".ckpt")
	require.NoError(t, err)
	_, err = os.Stat(out)
	require.True(t, os.IsNotExist(err), "no adapter from a diverged run")
}

// TestFinetuneTrainAllWritesModel: --train all writes a whole model that
// loads like any other.
func TestFinetuneTrainAllWritesModel(t *testing.T) {
	gputest.Device(t)
	model := shareddata.Path(t, "models/stories260K.bin")
	tok := shareddata.Path(t, "models/tok512.bin")
	text := smallText(t, 8000)
	out := filepath.Join(t.TempDir(), "m.gguf")
	r := runCLI(t, "finetune", "-m", model, "--tokenizer", tok, "--text", text, "--ctx", "128", "--cache", "window",
		"--cache-size", "48", "--train", "all", "--steps", "1", "-o", out)
	require.Equal(t, 0, r.code, r.stderr)
	r = runCLI(t, "perplexity", "-m", out, "--text", text, "--ctx", "128", "--stride", "0", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	r = runCLI(t, "finetune", "-m", model, "--tokenizer", tok, "--text", text, "--train", "all", "--lora-rank", "4", "-o", out)
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stderr, "drop --lora-rank")
}

// TestFinetuneRepeatFullAttention: the full-attention baseline of the repeat
// task trains on the sequences the bounded caches get at their default N (the
// trained context, 512 here), not on a gap longer than its own 1040 rows.
func TestFinetuneRepeatFullAttention(t *testing.T) {
	gputest.Device(t)
	model := shareddata.Path(t, "models/stories260K.bin")
	tok := shareddata.Path(t, "models/tok512.bin")
	text := smallText(t, 8000)
	for _, cache := range []string{"full", "window"} {
		r := runCLI(t, "finetune", "-m", model, "--tokenizer", tok, "--text", text, "--ctx", "1040", "--cache", cache,
			"--task", "repeat", "--steps", "1", "-o", filepath.Join(t.TempDir(), "a.gguf"), "--json")
		require.Equal(t, 0, r.code, "%s: %s", cache, r.stderr)
		var start finetuneLog
		require.NoError(t, json.Unmarshal([]byte(strings.SplitN(r.stdout, "\n", 2)[0]), &start))
		require.Equal(t, "start", start.Event)
		require.Equal(t, 513, start.Gap, cache)
		require.Equal(t, 264, start.Passage, cache)
	}
}
