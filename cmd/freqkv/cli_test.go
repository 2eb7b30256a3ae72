package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/stretchr/testify/require"
)

var binary string

// TestMain builds the real binary once; every CLI test runs it.
func TestMain(m *testing.M) {
	if report := os.Getenv(launchEnv); report != "" {
		os.Exit(launch(report)) // launcher mode, see runAttack
	}
	for _, a := range os.Args {
		if strings.HasPrefix(a, "-test.fuzzworker") { // fuzz workers run only the fuzz target
			os.Exit(m.Run())
		}
	}
	dir, err := os.MkdirTemp("", "freqkv-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "freqkv")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build freqkv: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run freqkv %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

func TestGenerateStories260K(t *testing.T) {
	gputest.Device(t)
	want, err := os.ReadFile(shareddata.Path(t, "models/stories260K.greedy256.txt"))
	require.NoError(t, err)
	for _, args := range [][]string{
		{"-m", shareddata.Path(t, "models/stories260K.bin"), "--tokenizer", shareddata.Path(t, "models/tok512.bin")},
		{"-m", shareddata.Path(t, "models/stories260K.gguf"), "--cache", "full"},
	} {
		r := runCLI(t, append([]string{"generate", "-n", "256", "--kv", "f32"}, args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, strings.TrimSpace(string(want)), strings.TrimSpace(r.stdout))
		require.Contains(t, r.stderr, "tok/s")
	}
}

func TestPerplexityPolicies(t *testing.T) {
	gputest.Device(t)
	model := shareddata.Path(t, "models/stories260K.bin")
	tok := shareddata.Path(t, "models/tok512.bin")
	text := shareddata.Path(t, "text/tinystories-valid-a.txt")
	for _, cache := range []string{"full", "window", "freqkv"} {
		args := []string{"perplexity", "-m", model, "--tokenizer", tok, "--text", text, "--ctx", "1024", "--stride", "0",
			"--cache", cache, "--kv", "f32", "--json"}
		if cache != "full" { // a full cache defaults to the window's 1024 tokens
			args = append(args, "--cache-size", "256")
		}
		var ppl [2]float64
		for i := range ppl {
			r := runCLI(t, args...)
			require.Equal(t, 0, r.code, r.stderr)
			var out struct {
				Tokens  int     `json:"tokens"`
				MeanNLL float64 `json:"mean_nll"`
				PPL     float64 `json:"ppl"`
				Cache   any     `json:"cache"`
				Chunks  []any   `json:"chunks"`
			}
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
			require.Equal(t, 1024, out.Tokens)
			require.Len(t, out.Chunks, 1)
			require.NotNil(t, out.Cache)
			require.False(t, math.IsNaN(out.PPL) || math.IsInf(out.PPL, 0))
			// A 260K-parameter model on in-domain text: far better than the
			// uniform 512, worse than perfect.
			require.Greater(t, out.PPL, 1.5, cache)
			require.Less(t, out.PPL, 100.0, cache)
			ppl[i] = out.PPL
		}
		require.Equal(t, ppl[0], ppl[1], "%s: two runs differ", cache)
		t.Logf("%s cache (N=256 for window/freqkv): perplexity %.4f over 1024 tokens", cache, ppl[0])
	}
}

func TestSpectrumWritesPNG(t *testing.T) {
	gputest.Device(t)
	out := filepath.Join(t.TempDir(), "spectrum.png")
	csv := filepath.Join(t.TempDir(), "spectrum.csv")
	r := runCLI(t, "spectrum", "-m", shareddata.Path(t, "models/stories260K.gguf"), "--text", shareddata.Path(t, "text/tinystories-valid-a.txt"),
		"--ctx", "512", "--layers", "-o", out, "--csv", csv)
	require.Equal(t, 0, r.code, r.stderr)
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Greater(t, img.Bounds().Dx(), 100)
	b, err := os.ReadFile(csv)
	require.NoError(t, err)
	require.Equal(t, 1+5*512, strings.Count(string(b), "\n"), "header + layers x frequencies")
	require.Contains(t, r.stdout, "mean")
}

func TestDevicesAndVectors(t *testing.T) {
	gputest.Device(t)
	r := runCLI(t, "devices")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "max storage binding")
	r = runCLI(t, "vectors", "--kernel", "add")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "0 failed")
}

func TestTokenizeRoundTrip(t *testing.T) {
	model := shareddata.Path(t, "models/stories260K.gguf")
	cmd := exec.Command(binary, "tokenize", "-m", model, "--no-bos")
	cmd.Stdin = strings.NewReader("Once upon a time, there was a little girl.")
	ids, err := cmd.Output()
	require.NoError(t, err)
	cmd = exec.Command(binary, "detokenize", "-m", model)
	cmd.Stdin = bytes.NewReader(ids)
	text, err := cmd.Output()
	require.NoError(t, err)
	require.Equal(t, "Once upon a time, there was a little girl.", string(text))
}

// TestBadFlags: every usage error exits 2 with one line naming the problem.
func TestBadFlags(t *testing.T) {
	model := shareddata.Path(t, "models/stories260K.gguf")
	text := shareddata.Path(t, "text/tinystories-valid-a.txt")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "Usage"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"generate", "--tokenizer", "tok.bin"}, "without -m"},
		{[]string{"generate", "-m", "/nonexistent.gguf"}, "nonexistent"},
		{[]string{"generate", "-m", model, "--cache", "lru"}, "full, window, freqkv or h2o"},
		{[]string{"generate", "-m", model, "--kv", "f8"}, "--kv \"f8\": use f16, f32, q8_0 or q4_0"},
		{[]string{"generate", "-m", model, "--kv-v", "q5_0"}, "--kv-v \"q5_0\": use f16, f32, q8_0 or q4_0"},
		{[]string{"generate", "-m", model, "--cache-size", "8", "--sink", "4", "--recent", "4"}, "sink"},
		{[]string{"generate", "-m", model, "--ratio", "1.5"}, "--ratio 1.5: retaining ratio 1.5 is outside (0, 1)"},
		{[]string{"generate", "-m", model, "--ratio", "NaN"}, "--ratio NaN"},
		{[]string{"generate", "-m", model, "--cache-size", "0"}, "--cache-size 0: a freqkv cache of 0 rows holds nothing"},
		{[]string{"generate", "-m", model, "--cache", "full", "--cache-size", "-5"}, "--cache-size -5"},
		{[]string{"generate", "-m", model, "--cache", "window", "--cache-size", "4", "--sink", "4"}, "--cache-size 4, --sink 4: a window of 4 rows"},
		{[]string{"generate", "-m", model, "--cache", "full", "--ratio", "0.3"}, "--ratio applies to --cache freqkv or h2o, not full"},
		{[]string{"generate", "-m", model, "--cache", "window", "--recent", "2"}, "--recent applies to --cache freqkv or h2o, not window"},
		{[]string{"generate", "-m", model, "--batch", "0"}, "--batch 0 must be at least 1"},
		{[]string{"generate", "-m", model, "--cache-size", "100000000", "--kv", "f32"}, "the most that fits is --cache-size"},
		{[]string{"generate", "-m", model, "--cache", "full", "--cache-size", "100000000"}, "the most that fits is --cache-size"},
		{[]string{"generate", "-m", model, "--batch", "100000000"}, "the most that fits is --batch"},
		{[]string{"perplexity", "-m", model, "--text", text, "--cache-size", "0"}, "--cache-size 0"},
		{[]string{"bench", "--cache", "full,window", "--ratio", "0.3"}, "--ratio applies to --cache freqkv"},
		{[]string{"bench", "--cache-size", "0"}, "--cache-size 0"},
		{[]string{"generate", "-m", model, "-n", "0"}, "-n"},
		{[]string{"generate", "-m", model, "--temp", "-1"}, "--temp -1 must be a finite number"},
		{[]string{"generate", "-m", model, "-p", "x", "-f", "y"}, "exclude"},
		{[]string{"generate", "-m", model, "--no-such-flag"}, "unknown flag"},
		{[]string{"perplexity", "-m", model}, "--text"},
		{[]string{"perplexity", "-m", model, "--text", text, "--stride", "-1"}, "negative"},
		{[]string{"spectrum", "-m", model, "--text", text, "-o", "x.jpg"}, ".png or .svg"},
		{[]string{"spectrum", "-m", model, "--text", text, "--ratio", "0"}, "ratio"},
		{[]string{"bench", "--preset", "huge"}, "tiny, medium"},
		{[]string{"bench", "--ctx", "12,x"}, "not a positive integer"},
		{[]string{"bench", "--cache", "full,lru"}, "lru"},
		{[]string{"bench", "--compress", "later"}, "--compress \"later\": use spread, whole"},
		{[]string{"info"}, "MODEL"},
		{[]string{"convert", "-m", model}, "--tokenizer"},
		{[]string{"tokenize", "-m", model, "--ids", "--pieces"}, "exclude"},
		{[]string{"devices", "extra"}, "unexpected argument"},
	} {
		r := runCLI(t, c.args...)
		require.Equal(t, 2, r.code, "freqkv %v: stderr %q", c.args, r.stderr)
		require.Contains(t, r.stderr, c.want, "freqkv %v", c.args)
		if len(c.args) > 0 {
			require.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "freqkv %v: one line, got %q", c.args, r.stderr)
		}
	}
}

// TestFullCacheAdvice: a full cache that runs out says so with flags the command has.
func TestFullCacheAdvice(t *testing.T) {
	gputest.Device(t)
	model := shareddata.Path(t, "models/stories260K.gguf")
	text := shareddata.Path(t, "text/tinystories-valid-a.txt")
	for _, args := range [][]string{
		{"generate", "-m", model, "-n", "30", "--cache", "full", "--cache-size", "10"},
		{"perplexity", "-m", model, "--text", text, "--ctx", "64", "--stride", "0", "--cache", "full", "--cache-size", "32"},
	} {
		r := runCLI(t, args...)
		require.Equal(t, 1, r.code, r.stderr)
		require.Contains(t, r.stderr, "context is full")
		require.Contains(t, r.stderr, "raise --cache-size (now ")
		require.NotContains(t, r.stderr, "--ctx")
	}
	// --cache-size sizes a full cache: 64 tokens fit a full cache of 64
	r := runCLI(t, "perplexity", "-m", model, "--text", text, "--ctx", "64", "--stride", "0", "--cache", "full", "--cache-size", "64", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, `"size":64`)
}

func TestRuntimeErrorsExit1(t *testing.T) {
	gputest.Device(t)
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	require.NoError(t, os.WriteFile(bad, []byte("GGUF\x03\x00\x00\x00garbage"), 0o644))
	r := runCLI(t, "info", bad)
	require.Equal(t, 1, r.code, r.stderr)
	require.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, r.stderr)
}

// TestTokenizeSharedVectors runs llama.cpp's tokenizer vectors through the
// binary (no BOS, special tokens not parsed), one process per input, for a
// SentencePiece and a byte-level BPE vocabulary.
func TestTokenizeSharedVectors(t *testing.T) {
	for _, name := range []string{"llama-spm", "gpt-2"} {
		vocab := shareddata.Path(t, "vocab/ggml-vocab-"+name+".gguf")
		inp, err := os.ReadFile(vocab + ".inp")
		require.NoError(t, err)
		out, err := os.ReadFile(vocab + ".out")
		require.NoError(t, err)
		inputs := strings.Split(string(inp), "\n__ggml_vocab_test__\n")
		if inputs[len(inputs)-1] == "" {
			inputs = inputs[:len(inputs)-1]
		}
		want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		require.Len(t, want, len(inputs), name)
		for i, text := range inputs {
			cmd := exec.Command(binary, "tokenize", "-m", vocab, "--no-bos")
			cmd.Stdin = strings.NewReader(text)
			got, err := cmd.Output()
			require.NoError(t, err, "%s input %d", name, i)
			require.Equal(t, strings.Join(strings.Fields(want[i]), " "), strings.TrimSpace(string(got)), "%s input %d %q", name, i, text)
		}
	}
}

// TestBenchProfilePrefill: bench --profile times a prefill chunk's kernels as well as a
// decode step's, with the matrix products among them.
func TestBenchProfilePrefill(t *testing.T) {
	gputest.Device(t)
	r := runCLI(t, "bench", "--ctx", "12", "--decode", "1", "--cache", "full", "--profile")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "one decode step at 12 tokens")
	require.Contains(t, r.stdout, "one prefill chunk of 12 tokens, full cache, GPU time by kernel:")
	require.Contains(t, r.stdout[strings.Index(r.stdout, "one prefill chunk"):], "matmul")
}

// TestBenchCompressSchedules: bench measures both compression schedules side by side and
// reports the time between tokens, the compressing steps' times and the dispatches per
// decode step.
func TestBenchCompressSchedules(t *testing.T) {
	gputest.Device(t)
	r := runCLI(t, "bench", "--ctx", "40", "--decode", "60", "--cache", "freqkv", "--cache-size", "32", "--compress", "spread,whole", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var out struct {
		Results []struct {
			Cache        string  `json:"cache"`
			Compressions int     `json:"compressions"`
			P50          float64 `json:"step_p50_ms"`
			Max          float64 `json:"step_max_ms"`
			CompressMax  float64 `json:"compress_step_max_ms"`
			Dispatches   int     `json:"decode_dispatches"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.Len(t, out.Results, 2)
	for i, want := range []string{"freqkv", "freqkv-whole"} {
		row := out.Results[i]
		require.Equal(t, want, row.Cache)
		require.Greater(t, row.Compressions, 1)
		require.Greater(t, row.P50, 0.0)
		require.GreaterOrEqual(t, row.Max, row.P50)
		require.Greater(t, row.CompressMax, 0.0)
		require.Greater(t, row.Dispatches, 10)
	}
}
