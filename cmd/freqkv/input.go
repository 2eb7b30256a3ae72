package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/outfile"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/spf13/pflag"
)

// Every input a command reads whole (a prompt, a text, token ids, stdin) is
// read with a limit, so an endless input (/dev/zero, a runaway pipe) is an
// error, not unbounded memory. Model and tokenizer files bound themselves:
// their headers say how large they can be.

// defaultMaxInput is --max-input's default.
const defaultMaxInput = 256 << 20

// byteSize is a flag value in bytes, written as 1048576, 512K, 256M, 256MiB
// or 1G (powers of 1024).
type byteSize int64

func (b *byteSize) String() string { return humanBytes(int64(*b)) }
func (b *byteSize) Type() string   { return "size" }

func (b *byteSize) Set(s string) error {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := int64(1)
	if t != "" {
		if k := strings.IndexByte("KMGT", t[len(t)-1]); k >= 0 {
			mult = 1 << (10 * (k + 1))
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 1 || v > (1<<62)/mult {
		return fmt.Errorf("%q is not a size such as 1048576, 64K, 256M or 1G", s)
	}
	*b = byteSize(v * mult)
	return nil
}

// addMaxInput adds --max-input to fs.
func addMaxInput(fs *pflag.FlagSet) *byteSize {
	b := byteSize(defaultMaxInput)
	fs.Var(&b, "max-input", "most bytes read from a prompt, text, token or stdin input (e.g. 64M, 1G)")
	return &b
}

// readInput reads the file path, named by flag in messages, refusing more
// than limit bytes.
func readInput(flag, path string, limit byteSize) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("%s %s: %v", flag, path, unwrapPath(err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		if fi.IsDir() {
			return nil, usagef("%s %s is a directory", flag, path)
		}
		if fi.Mode().IsRegular() && fi.Size() > int64(limit) {
			return nil, tooLarge(flag+" "+path, limit)
		}
	}
	return readLimited(f, flag+" "+path, limit)
}

// readStdin reads standard input, refusing more than limit bytes.
func readStdin(limit byteSize) ([]byte, error) { return readLimited(os.Stdin, "stdin", limit) }

// readLimited reads r in chunks, so an endless input costs at most the limit
// (and a legitimate one twice its size, while the chunks are joined).
func readLimited(r io.Reader, what string, limit byteSize) ([]byte, error) {
	var chunks [][]byte
	total := int64(0)
	for {
		c := make([]byte, min(1<<20, int64(limit)+1-total))
		n, err := io.ReadFull(r, c)
		chunks = append(chunks, c[:n])
		total += int64(n)
		if total > int64(limit) {
			return nil, tooLarge(what, limit)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %v", what, unwrapPath(err))
		}
	}
	return bytes.Join(chunks, nil), nil
}

func tooLarge(what string, limit byteSize) error {
	return usagef("%s is larger than the input limit of %s; raise --max-input to read it", what, humanBytes(int64(limit)))
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseTokenIDs reads whitespace-separated token ids from b (named what);
// ids are checked against the vocabulary by checkTokenIDs once it is known.
func parseTokenIDs(what string, b []byte) ([]int32, error) {
	var out []int32
	for i, f := range strings.Fields(string(b)) {
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			return nil, usagef("%s: item %d (%.20q) is not a token id", what, i+1, f)
		}
		out = append(out, int32(v))
	}
	return out, nil
}

// checkTokenIDs refuses ids outside a vocabulary of n tokens.
func checkTokenIDs(what string, ids []int32, n int) error {
	for i, id := range ids {
		if id < 0 || int(id) >= n {
			return usagef("%s: item %d (%d) is not a token id in [0, %d)", what, i+1, id, n)
		}
	}
	return nil
}

// readTokenFile reads whitespace-separated token ids from a file.
func readTokenFile(path string, limit byteSize) ([]int32, error) {
	b, err := readInput("--tokens", path, limit)
	if err != nil {
		return nil, err
	}
	return parseTokenIDs("--tokens "+path, b)
}

// inputFlags name a token stream: a text file or a file of token ids.
type inputFlags struct {
	text     string
	tokens   string
	maxInput *byteSize
}

func (in *inputFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&in.text, "text", "", "text file (tokenized with BOS as the model expects)")
	fs.StringVar(&in.tokens, "tokens", "", "file of whitespace-separated token ids")
	in.maxInput = addMaxInput(fs)
}

// files lists every input file, for outfile.Check.
func (in *inputFlags) files(mf *modelFlags) []outfile.Named {
	return append(mf.files(), outfile.Named{Name: "--text", Path: in.text}, outfile.Named{Name: "--tokens", Path: in.tokens})
}

// loadWithInput checks the flags, loads the model and returns the stream's
// tokens; the caller closes dev.
func (in *inputFlags) loadWithInput(mf *modelFlags, quiet bool) (*engine.Device, *llama.Model, []int32, error) {
	if (in.text == "") == (in.tokens == "") {
		return nil, nil, nil, usagef("need exactly one of --text FILE or --tokens FILE")
	}
	if err := mf.check(); err != nil {
		return nil, nil, nil, err
	}
	var ids []int32
	var text []byte
	var err error
	if in.tokens != "" {
		if ids, err = readTokenFile(in.tokens, *in.maxInput); err != nil {
			return nil, nil, nil, err
		}
	} else if text, err = readInput("--text", in.text, *in.maxInput); err != nil {
		return nil, nil, nil, err
	}
	dev, m, err := mf.load(quiet)
	if err != nil {
		return nil, nil, nil, err
	}
	if in.text != "" {
		ids, err = m.Tok.Encode(string(text), m.Tok.AddBOS())
	} else {
		err = checkTokenIDs("--tokens "+in.tokens, ids, m.H.Vocab)
	}
	if err != nil {
		dev.Close()
		return nil, nil, nil, err
	}
	return dev, m, ids, nil
}

// checkSampler validates the sampling flags: finite and in range.
func checkSampler(s *llama.Sampler) error {
	finite := func(flag string, v, lo, hi float64, want string) error {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
			return usagef("%s %v must be %s", flag, v, want)
		}
		return nil
	}
	for _, c := range []struct {
		flag   string
		v      float64
		lo, hi float64
		want   string
	}{
		{"--temp", s.Temperature, 0, math.MaxFloat64, "a finite number >= 0 (0: greedy)"},
		{"--top-p", s.TopP, 0, 1, "in [0, 1] (1: off)"},
		{"--min-p", s.MinP, 0, 1, "in [0, 1] (0: off)"},
		{"--repeat-penalty", s.RepeatPenalty, 0, math.MaxFloat64, "a finite number >= 0 (1: off)"},
	} {
		if err := finite(c.flag, c.v, c.lo, c.hi, c.want); err != nil {
			return err
		}
	}
	if s.TopK < 0 {
		return usagef("--top-k %d must be >= 0 (0: off)", s.TopK)
	}
	if s.RepeatWindow < 0 {
		return usagef("--repeat-last-n %d must be >= 0", s.RepeatWindow)
	}
	if err := s.Validate(); err != nil {
		return usagef("%v", err)
	}
	return nil
}
