package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/synth"
	"github.com/stretchr/testify/require"
)

// The adversarial suite: what a hostile or careless user does to the CLI.
// Every case asserts the exit status, a one-line message naming the
// problem, that every input file is byte-identical afterwards, and, for
// endless inputs, a ceiling on the process's peak memory.

// attack is one adversarial run of the binary.
type attack struct {
	name   string
	args   []string
	stdin  string // a file to read stdin from ("" for none)
	stdout string // a file stdout goes to: "/dev/full", "closed" ("" captures it)
	gpu    bool   // needs a device (the command loads a model onto it)
	code   int
	want   string // in the one-line message on stderr
	// inputs must be byte-identical afterwards; maxRSS (MiB) bounds the
	// peak memory when set.
	inputs []string
	maxRSS int64
	check  func(t *testing.T, r result) // more assertions
}

type fixture struct {
	dir                    string
	bin, tok, gguf, text   string // copies of the shared files, which tests may try to destroy
	tokens                 string // a file of token ids
	badBOS, nanOut, badTok string // synthetic models: special id out of range, NaN weights, bad tokenizer
}

func copyFile(t *testing.T, from, to string) string {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o644))
	return to
}

// rewriteGGUF writes src's metadata and tensors to dst, with edit applied to
// the metadata and poison to the tensor data.
func rewriteGGUF(t *testing.T, src, dst string, edit func(kv []gguf.KV) []gguf.KV, poison func(name string, data []byte) []byte) string {
	t.Helper()
	f, err := gguf.Open(src)
	require.NoError(t, err)
	defer f.Close()
	var kv []gguf.KV
	for _, k := range f.Keys() {
		if k == gguf.AlignmentKey {
			continue
		}
		v, _ := f.Value(k)
		kv = append(kv, gguf.KV{Key: k, Value: v})
	}
	if edit != nil {
		kv = edit(kv)
	}
	var ts []gguf.WriteTensor
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		data, err := f.TensorData(ti)
		require.NoError(t, err)
		data = bytes.Clone(data)
		if poison != nil {
			data = poison(ti.Name, data)
		}
		ts = append(ts, gguf.WriteTensor{Name: ti.Name, Dims: ti.Dims, Type: ti.Type, Data: data})
	}
	var b bytes.Buffer
	require.NoError(t, gguf.Write(&b, kv, ts))
	require.NoError(t, os.WriteFile(dst, b.Bytes(), 0o644))
	return dst
}

func setKV(key string, value any) func([]gguf.KV) []gguf.KV {
	return func(kv []gguf.KV) []gguf.KV {
		for i := range kv {
			if kv[i].Key == key {
				kv[i].Value = value
				return kv
			}
		}
		return append(kv, gguf.KV{Key: key, Value: value})
	}
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	fx := &fixture{dir: dir}
	fx.bin = copyFile(t, shareddata.Path(t, "models/stories260K.bin"), filepath.Join(dir, "stories260K.bin"))
	fx.tok = copyFile(t, shareddata.Path(t, "models/tok512.bin"), filepath.Join(dir, "tok512.bin"))
	fx.gguf = copyFile(t, shareddata.Path(t, "models/stories260K.gguf"), filepath.Join(dir, "stories260K.gguf"))
	fx.text = copyFile(t, shareddata.Path(t, "text/tinystories-valid-a.txt"), filepath.Join(dir, "text.txt"))
	fx.tokens = filepath.Join(dir, "tokens.txt")
	require.NoError(t, os.WriteFile(fx.tokens, []byte("1 303 307 261 278 232\n"), 0o644)) // valid for both vocabularies (512, 320)

	tiny := filepath.Join(dir, "tiny.gguf")
	require.NoError(t, synth.Write(tiny, synth.Tiny()))
	fx.badBOS = rewriteGGUF(t, tiny, filepath.Join(dir, "bad-bos.gguf"), setKV("tokenizer.ggml.bos_token_id", uint32(99999)), nil)
	fx.badTok = rewriteGGUF(t, tiny, filepath.Join(dir, "bad-tok.gguf"), setKV("tokenizer.ggml.model", "bert"), nil)
	fx.nanOut = rewriteGGUF(t, tiny, filepath.Join(dir, "nan.gguf"), nil, func(name string, data []byte) []byte {
		if name == "output_norm.weight" { // F32: every element NaN
			for i := 0; i+4 <= len(data); i += 4 {
				copy(data[i:], []byte{0x00, 0x00, 0xc0, 0x7f})
			}
		}
		return data
	})
	return fx
}

func sums(t *testing.T, files []string) map[string][32]byte {
	out := map[string][32]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err, "input %s must still be readable", f)
		out[f] = sha256.Sum256(b)
	}
	return out
}

// runAttack runs the binary with stdin/stdout as the attack says and
// returns its result and peak RSS in MiB.
func runAttack(t *testing.T, a attack) (result, int64) {
	t.Helper()
	cmd := exec.Command(binary, a.args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if a.stdin != "" {
		f, err := os.Open(a.stdin)
		require.NoError(t, err)
		defer f.Close()
		cmd.Stdin = f
	}
	switch a.stdout {
	case "":
	case "closed":
		// Start the child with fd 1 closed: stdout as an *os.File that is
		// closed before the child starts is not possible through exec, so
		// run it through the shell's >&-.
		cmd = exec.Command("/bin/sh", append([]string{"-c", `exec "$0" "$@" >&-`, binary}, a.args...)...)
		cmd.Stderr = &errb
	case "rw-null": // as Python's subprocess.DEVNULL opens it: read-write
		f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		require.NoError(t, err)
		defer f.Close()
		cmd.Stdout = f
	default:
		f, err := os.OpenFile(a.stdout, os.O_WRONLY, 0)
		require.NoError(t, err)
		defer f.Close()
		cmd.Stdout = f
	}
	// A child's ru_maxrss starts from its parent's peak (it is forked
	// sharing the parent's memory until exec), and this test process grows
	// large; so a run whose memory is judged goes through a small launcher
	// (this test binary in launcher mode, see TestMain) that reports it.
	report := filepath.Join(t.TempDir(), "maxrss")
	if a.maxRSS > 0 {
		cmd.Args = append([]string{os.Args[0], binary}, a.args...)
		cmd.Path = os.Args[0]
		cmd.Env = append(os.Environ(), launchEnv+"="+report)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run freqkv %v: %v", a.args, err)
	}
	var rss int64
	if a.maxRSS > 0 {
		b, err := os.ReadFile(report)
		require.NoError(t, err, "launcher report; stderr %q", errb.String())
		kib, err := strconv.ParseInt(string(b), 10, 64)
		require.NoError(t, err)
		rss = kib / 1024
	}
	return result{out.String(), errb.String(), code}, rss
}

// launchEnv names the file a launcher writes its child's peak RSS (KiB) to.
const launchEnv = "FREQKV_TEST_MAXRSS_REPORT"

// launch runs os.Args[1:] with this process's stdin, stdout and stderr,
// writes the child's peak RSS to report and returns its exit status.
func launch(report string) int {
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		return 125
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if err := os.WriteFile(report, []byte(strconv.FormatInt(int64(ru.Maxrss), 10)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		return 125
	}
	return code
}

func (a attack) run(t *testing.T) {
	t.Helper()
	if a.gpu {
		gputest.Device(t)
	}
	before := sums(t, a.inputs)
	r, rss := runAttack(t, a)
	require.Equal(t, a.code, r.code, "freqkv %v: stderr %q", a.args, r.stderr)
	if a.code != 0 {
		msg := strings.TrimSpace(r.stderr)
		require.NotContains(t, msg, "\n", "freqkv %v: one line, got %q", a.args, r.stderr)
		require.Contains(t, msg, a.want, "freqkv %v", a.args)
		require.NotContains(t, msg, "panic")
	}
	require.Equal(t, before, sums(t, a.inputs), "freqkv %v modified an input", a.args)
	if a.maxRSS > 0 {
		require.Less(t, rss, a.maxRSS, "freqkv %v: peak RSS %d MiB", a.args, rss)
		t.Logf("peak RSS %d MiB (ceiling %d)", rss, a.maxRSS)
	}
	if a.check != nil {
		a.check(t, r)
	}
}

// noTempFiles asserts that a directory holds only the names listed.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.Contains(e.Name(), ".tmp-"), "temporary file %s left in %s", e.Name(), dir)
	}
}

func TestAdversarialDataLoss(t *testing.T) {
	fx := newFixture(t)
	dir := fx.dir
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.Symlink(fx.bin, filepath.Join(dir, "bin-link")))
	require.NoError(t, os.Symlink(fx.tok, filepath.Join(dir, "tok-link")))
	require.NoError(t, os.Link(fx.bin, filepath.Join(dir, "bin-hard")))
	require.NoError(t, os.Link(fx.text, filepath.Join(dir, "text-hard.png")))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	inputs := []string{fx.bin, fx.tok, fx.gguf, fx.text}
	convert := func(out string) []string { return []string{"convert", "-m", fx.bin, "--tokenizer", fx.tok, "-o", out} }
	spectrum := func(extra ...string) []string {
		return append([]string{"spectrum", "-m", fx.gguf, "--text", fx.text}, extra...)
	}
	for _, a := range []attack{
		{name: "convert onto the model", args: convert(fx.bin), code: 2, want: "is also -m"},
		{name: "convert onto the tokenizer", args: convert(fx.tok), code: 2, want: "is also --tokenizer"},
		{name: "convert onto the model through ../", args: convert(filepath.Join(dir, "sub", "..", "stories260K.bin")), code: 2, want: "overwritten"},
		{name: "convert onto the model through a relative path", args: convert(mustRel(t, fx.bin)), code: 2, want: "overwritten"},
		{name: "convert onto the model through a symlink", args: convert(filepath.Join(dir, "bin-link")), code: 2, want: "is the same file as -m"},
		{name: "convert onto the tokenizer through a symlink", args: convert(filepath.Join(dir, "tok-link")), code: 2, want: "is the same file as --tokenizer"},
		{name: "convert onto the model through a hard link", args: convert(filepath.Join(dir, "bin-hard")), code: 2, want: "is the same file as -m"},
		{name: "convert onto a fifo", args: convert(fifo), code: 2, want: "not a regular file (a fifo)"},
		{name: "convert onto /dev/null", args: convert(os.DevNull), code: 2, want: "not a regular file (a character device)"},
		{name: "convert onto a directory", args: convert(filepath.Join(dir, "sub")), code: 2, want: "a directory"},
		{name: "convert into a missing directory", args: convert(filepath.Join(dir, "nodir", "x.gguf")), code: 2, want: "does not exist"},
		{name: "spectrum plot onto the text", args: spectrum("-o", filepath.Join(dir, "text-hard.png")), code: 2, want: "the same file as --text"},
		{name: "spectrum csv onto the model", args: spectrum("--csv", fx.gguf), code: 2, want: "is also -m"},
		{name: "spectrum csv onto the text through ../", args: spectrum("--csv", filepath.Join(dir, "sub", "..", "text.txt")), code: 2, want: "overwritten"},
		{name: "spectrum plot and csv onto one file", args: spectrum("-o", filepath.Join(dir, "s.png"), "--csv", filepath.Join(dir, "s.png")), code: 2, want: "one would overwrite the other"},
	} {
		t.Run(a.name, func(t *testing.T) {
			a.inputs = inputs
			a.run(t)
			noTempFiles(t, dir)
		})
	}
	fi, err := os.Lstat(fifo)
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&os.ModeNamedPipe, "the fifo must still be there")

	t.Run("failed convert keeps the existing output", func(t *testing.T) {
		out := filepath.Join(dir, "existing.gguf")
		require.NoError(t, os.WriteFile(out, []byte("precious"), 0o644))
		bad := filepath.Join(dir, "bad.bin")
		b, _ := os.ReadFile(fx.bin)
		require.NoError(t, os.WriteFile(bad, b[:len(b)-4], 0o644))
		a := attack{args: []string{"convert", "-m", bad, "--tokenizer", fx.tok, "-o", out}, code: 1, want: "implies", inputs: append(inputs, bad)}
		a.run(t)
		got, _ := os.ReadFile(out)
		require.Equal(t, "precious", string(got))
		noTempFiles(t, dir)
	})

	t.Run("convert replaces the output atomically and keeps its mode", func(t *testing.T) {
		out := filepath.Join(dir, "out.gguf")
		require.NoError(t, os.WriteFile(out, []byte("old"), 0o640))
		attack{args: convert(out), code: 0, inputs: inputs}.run(t)
		g, err := gguf.Open(out)
		require.NoError(t, err, "the output must be a whole GGUF file")
		require.Len(t, g.Tensors, 47)
		g.Close()
		fi, _ := os.Stat(out)
		require.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
		noTempFiles(t, dir)
	})

	t.Run("device node output", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("creating a device node needs root")
		}
		node := filepath.Join(dir, "null")
		require.NoError(t, syscall.Mknod(node, syscall.S_IFCHR|0o666, 1<<8|3)) // like /dev/null
		attack{args: convert(node), code: 2, want: "character device", inputs: inputs}.run(t)
		fi, err := os.Lstat(node)
		require.NoError(t, err, "the device node must still be there")
		require.NotZero(t, fi.Mode()&os.ModeCharDevice)
	})

	t.Run("full disk", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("mounting a small tmpfs needs root")
		}
		mnt := filepath.Join(dir, "tiny-fs")
		require.NoError(t, os.Mkdir(mnt, 0o755))
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=256k"); err != nil {
			t.Skipf("cannot mount a tmpfs here: %v", err)
		}
		defer syscall.Unmount(mnt, 0)
		out := filepath.Join(mnt, "out.gguf")
		require.NoError(t, os.WriteFile(out, []byte("precious"), 0o644))
		attack{args: convert(out), code: 1, want: "no space left on device", inputs: inputs}.run(t)
		got, _ := os.ReadFile(out)
		require.Equal(t, "precious", string(got), "a failed write must leave the old output")
		noTempFiles(t, mnt)

		// A plot or a CSV that does not fit: no truncated file is left
		// looking complete, and what was there stays.
		for _, out := range []string{filepath.Join(mnt, "s.png"), filepath.Join(mnt, "s.svg"), filepath.Join(mnt, "s.csv")} {
			require.NoError(t, os.WriteFile(out, []byte("precious"), 0o644))
			flag := "-o"
			if strings.HasSuffix(out, ".csv") {
				flag = "--csv"
			}
			filler := filepath.Join(mnt, "filler")
			fillDisk(t, filler)
			attack{args: spectrum("--ctx", "64", flag, out), gpu: true, code: 1, want: "no space left on device", inputs: inputs}.run(t)
			os.Remove(filler)
			got, _ := os.ReadFile(out)
			require.Equal(t, "precious", string(got), "a failed write must leave the old %s", out)
			noTempFiles(t, mnt)
		}
	})
}

// fillDisk writes a file that takes all the free space left.
func fillDisk(t *testing.T, path string) {
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			return
		}
	}
}

func mustRel(t *testing.T, path string) string {
	wd, err := os.Getwd()
	require.NoError(t, err)
	rel, err := filepath.Rel(wd, path)
	require.NoError(t, err)
	return rel
}

func TestAdversarialEndlessInputs(t *testing.T) {
	fx := newFixture(t)
	inputs := []string{fx.bin, fx.tok, fx.gguf}
	empty := filepath.Join(fx.dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	for _, a := range []attack{
		{name: "info /dev/zero as checkpoint", args: []string{"info", "/dev/zero", "--tokenizer", fx.tok}, code: 1, want: "model /dev/zero: not a regular file", maxRSS: 64},
		{name: "tokenizer /dev/zero", args: []string{"info", fx.bin, "--tokenizer", "/dev/zero"}, code: 1, want: "tokenizer /dev/zero: not a regular file", maxRSS: 64},
		{name: "convert from /dev/zero", args: []string{"convert", "-m", "/dev/zero", "--tokenizer", fx.tok, "-o", filepath.Join(fx.dir, "o.gguf")}, code: 1, want: "not a regular file", maxRSS: 64},
		{name: "prompt file /dev/zero", args: []string{"generate", "-m", fx.gguf, "-f", "/dev/zero", "--max-input", "4M"}, code: 2, want: "-f /dev/zero is larger than the input limit of 4.0 MiB; raise --max-input", maxRSS: 64},
		{name: "tokens /dev/zero", args: []string{"generate", "-m", fx.gguf, "--tokens", "/dev/zero", "--max-input", "4M"}, code: 2, want: "--tokens /dev/zero is larger", maxRSS: 64},
		{name: "text /dev/zero", args: []string{"perplexity", "-m", fx.gguf, "--text", "/dev/zero", "--max-input", "4M"}, code: 2, want: "--text /dev/zero is larger", maxRSS: 64},
		{name: "spectrum tokens /dev/zero", args: []string{"spectrum", "-m", fx.gguf, "--tokens", "/dev/zero", "--max-input", "4M"}, code: 2, want: "--tokens /dev/zero is larger", maxRSS: 64},
		{name: "tokenize endless stdin, default limit", args: []string{"tokenize", "-m", fx.gguf}, stdin: "/dev/zero", code: 2, want: "stdin is larger than the input limit of 256.0 MiB", maxRSS: 320},
		{name: "detokenize endless stdin", args: []string{"detokenize", "-m", fx.gguf, "--max-input", "1M"}, stdin: "/dev/zero", code: 2, want: "stdin is larger", maxRSS: 64},
		{name: "bad --max-input", args: []string{"tokenize", "-m", fx.gguf, "--max-input", "lots"}, code: 2, want: "not a size"},
		{name: "empty model", args: []string{"info", empty}, code: 1, want: "model " + empty + ": empty file"},
		{name: "empty checkpoint", args: []string{"convert", "-m", empty, "--tokenizer", fx.tok, "-o", filepath.Join(fx.dir, "o.gguf")}, code: 1, want: "empty file"},
		{name: "empty tokenizer", args: []string{"info", fx.bin, "--tokenizer", empty}, code: 1, want: "tokenizer " + empty + ": empty file"},
	} {
		t.Run(a.name, func(t *testing.T) {
			a.inputs = inputs
			a.run(t)
		})
	}
}

func TestAdversarialChecks(t *testing.T) {
	fx := newFixture(t)
	inputs := []string{fx.gguf, fx.badBOS, fx.nanOut, fx.tokens}
	gen := func(extra ...string) []string {
		return append([]string{"generate", "-m", fx.gguf, "-n", "4"}, extra...)
	}
	var cases []attack
	for _, c := range []struct{ flag, value, want string }{
		{"--top-p", "NaN", "--top-p NaN must be in [0, 1]"},
		{"--top-p", "1.5", "--top-p 1.5"},
		{"--min-p", "NaN", "--min-p NaN"},
		{"--min-p", "-0.1", "--min-p -0.1"},
		{"--repeat-penalty", "NaN", "--repeat-penalty NaN"},
		{"--repeat-penalty", "Inf", "--repeat-penalty +Inf"},
		{"--repeat-penalty", "-1", "--repeat-penalty -1"},
		{"--temp", "Inf", "--temp +Inf"},
		{"--temp", "NaN", "--temp NaN"},
		{"--temp", "-1", "--temp -1"},
		{"--repeat-last-n", "-1", "--repeat-last-n -1"},
		{"--top-k", "-1", "--top-k -1"},
	} {
		cases = append(cases, attack{name: c.flag + "=" + c.value, args: gen(c.flag, c.value), code: 2, want: c.want})
	}
	cases = append(cases,
		attack{name: "spectrum --ctx -1", args: []string{"spectrum", "-m", fx.gguf, "--text", fx.tokens, "--ctx", "-1"}, code: 2, want: "--ctx -1 must not be negative"},
		attack{name: "spectrum --ratio NaN", args: []string{"spectrum", "-m", fx.gguf, "--text", fx.tokens, "--ratio", "NaN"}, code: 2, want: "--ratio NaN"},
		attack{name: "missing model names the path once", args: []string{"info", filepath.Join(fx.dir, "nope.gguf")}, code: 2, want: "model " + filepath.Join(fx.dir, "nope.gguf") + ": no such file or directory"},
	)
	neg := filepath.Join(fx.dir, "neg.txt")
	big := filepath.Join(fx.dir, "big.txt")
	word := filepath.Join(fx.dir, "word.txt")
	require.NoError(t, os.WriteFile(neg, []byte("1 -5 3"), 0o644))
	require.NoError(t, os.WriteFile(big, []byte("1 512 3"), 0o644))
	require.NoError(t, os.WriteFile(word, []byte("1 x 3"), 0o644))
	inputs = append(inputs, neg, big, word)
	cases = append(cases,
		attack{name: "special id outside the vocabulary: info", args: []string{"info", fx.badBOS}, code: 1, want: "tokenizer.ggml.bos_token_id 99999 is outside the vocabulary of 320 tokens"},
		attack{name: "special id outside the vocabulary: tokenize", args: []string{"tokenize", "-m", fx.badBOS}, stdin: fx.tokens, code: 1, want: "bos_token_id 99999"},
		attack{name: "special id outside the vocabulary: generate", args: []string{"generate", "-m", fx.badBOS, "-n", "2"}, gpu: true, code: 1, want: "bos_token_id 99999"},
		attack{name: "unsupported tokenizer: info fails as generate does", args: []string{"info", fx.badTok}, code: 1, want: `tokenizer: reading GGUF vocabulary: tokenizer.ggml.model "bert" is not supported`,
			check: func(t *testing.T, r result) { require.Equal(t, 1, strings.Count(r.stderr, "tokenizer:"), r.stderr) }},
		attack{name: "--tokens word", args: gen("--tokens", word), code: 2, want: `item 2 ("x") is not a token id`},
		attack{name: "--tokens negative id", args: gen("--tokens", neg), gpu: true, code: 2, want: "item 2 (-5) is not a token id in [0, 512)"},
		attack{name: "--tokens id past the vocabulary", args: gen("--tokens", big), gpu: true, code: 2, want: "item 2 (512) is not a token id in [0, 512)"},
		attack{name: "perplexity --tokens id past the vocabulary", args: []string{"perplexity", "-m", fx.gguf, "--tokens", big}, gpu: true, code: 2, want: "item 2 (512)"},
		attack{name: "detokenize id past the vocabulary", args: []string{"detokenize", "-m", fx.gguf}, stdin: big, code: 2, want: "item 2 (512)"},
		attack{name: "NaN weights: greedy generate", args: []string{"generate", "-m", fx.nanOut, "-n", "4"}, gpu: true, code: 1, want: "token 1 (after the 1-token prompt): non-finite logits"},
		attack{name: "NaN weights: sampled generate", args: []string{"generate", "-m", fx.nanOut, "-n", "4", "--temp", "0.8"}, gpu: true, code: 1, want: "non-finite logits"},
		attack{name: "NaN weights: perplexity", args: []string{"perplexity", "-m", fx.nanOut, "--tokens", fx.tokens}, gpu: true, code: 1, want: "position 0: non-finite NLL"},
	)
	for _, a := range cases {
		t.Run(a.name, func(t *testing.T) {
			a.inputs = inputs
			a.run(t)
		})
	}
}

func TestAdversarialOutput(t *testing.T) {
	fx := newFixture(t)
	inputs := []string{fx.gguf, fx.text, fx.tokens}
	for _, a := range []attack{
		{name: "info > /dev/full", args: []string{"info", fx.gguf}, stdout: "/dev/full", code: 1, want: "writing to stdout: no space left on device"},
		{name: "info >&-", args: []string{"info", fx.gguf}, stdout: "closed", code: 1, want: "writing to stdout: stdout is closed"},
		{name: "info > /dev/null is fine", args: []string{"info", fx.gguf}, stdout: os.DevNull, code: 0},
		{name: "info 1<> /dev/null is fine", args: []string{"info", fx.gguf}, stdout: "rw-null", code: 0},
		{name: "tokenize > /dev/full", args: []string{"tokenize", "-m", fx.gguf}, stdin: fx.text, stdout: "/dev/full", code: 1, want: "writing to stdout"},
		{name: "detokenize > /dev/full", args: []string{"detokenize", "-m", fx.gguf}, stdin: fx.tokens, stdout: "/dev/full", code: 1, want: "writing to stdout"},
		{name: "devices > /dev/full", args: []string{"devices"}, stdout: "/dev/full", gpu: true, code: 1, want: "writing to stdout"},
		{name: "generate > /dev/full", args: []string{"generate", "-m", fx.gguf, "-n", "8"}, stdout: "/dev/full", gpu: true, code: 1, want: "writing to stdout"},
		{name: "generate >&-", args: []string{"generate", "-m", fx.gguf, "-n", "8"}, stdout: "closed", gpu: true, code: 1, want: "stdout is closed"},
		{name: "spectrum > /dev/full", args: []string{"spectrum", "-m", fx.gguf, "--text", fx.text, "--ctx", "64"}, stdout: "/dev/full", gpu: true, code: 1, want: "writing to stdout"},
		{name: "perplexity > /dev/full", args: []string{"perplexity", "-m", fx.gguf, "--text", fx.text, "--ctx", "64", "--stride", "0"}, stdout: "/dev/full", gpu: true, code: 1, want: "writing to stdout"},
	} {
		t.Run(a.name, func(t *testing.T) {
			a.inputs = inputs
			a.run(t)
		})
	}
}

// TestGenerateKeepsFirstSpace: the first generated token after a prompt
// keeps its leading space, for a GGUF (SentencePiece) and a llama2.c model.
func TestGenerateKeepsFirstSpace(t *testing.T) {
	gputest.Device(t)
	fx := newFixture(t)
	for _, model := range [][]string{{"-m", fx.gguf}, {"-m", fx.bin, "--tokenizer", fx.tok}} {
		for prompt, want := range map[string]string{"Once upon": "Once upon a time", "The dog": "The dog was"} {
			r := runCLI(t, append([]string{"generate", "-n", "3", "-p", prompt}, model...)...)
			require.Equal(t, 0, r.code, r.stderr)
			require.True(t, strings.HasPrefix(r.stdout, want), "%v -p %q printed %q", model, prompt, r.stdout)
		}
	}
}

// TestPerplexityStreamsAndStopsCleanly: each window's line reaches a pipe
// as it is measured, and SIGINT prints a partial summary, then the process
// dies of SIGINT.
func TestPerplexityStreamsAndStopsCleanly(t *testing.T) {
	gputest.Device(t)
	fx := newFixture(t)
	cmd := exec.Command(binary, "perplexity", "-m", fx.gguf, "--text", fx.text, "--ctx", "128", "--stride", "16", "--cache", "full")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	buf := make([]byte, 4096)
	var got []byte
	for !bytes.Contains(got, []byte("\n")) { // the first window's line, long before the end
		n, err := out.Read(buf)
		require.NoError(t, err, "stderr %q", errb.String())
		got = append(got, buf[:n]...)
	}
	require.True(t, bytes.HasPrefix(got, []byte("window at      0:")), "%q", got)
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	rest, _ := readAll(out)
	got = append(got, rest...)
	err = cmd.Wait()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGINT, "want death by SIGINT, got %v (%v)", cmd.ProcessState, err)
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	last := lines[len(lines)-1]
	require.Contains(t, last, "[partial: interrupted after")
	require.Contains(t, last, "full cache:")
}

func readAll(r interface{ Read([]byte) (int, error) }) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}
