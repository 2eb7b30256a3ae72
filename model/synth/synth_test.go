package synth

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/freqkv/freqkv/model"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/tokenizer"
)

// specs covers both architectures, every weight type, GQA and multi-query, tied and not.
func specs() map[string]Spec {
	tiny := Tiny()
	qwen := Spec{Arch: "qwen2", Dim: 96, Layers: 3, Heads: 6, KVHeads: 2, FFN: 224, Vocab: 300,
		Context: 512, WeightType: ggml.Q8_0, Tied: true, RopeBase: 1e6, Seed: 7}
	q4 := Spec{Arch: "llama", Dim: 64, Layers: 1, Heads: 2, KVHeads: 1, FFN: 96, Vocab: 259,
		Context: 64, WeightType: ggml.Q4_0, RopeBase: 10000, Seed: 3}
	f16 := tiny
	f16.WeightType, f16.Tied = ggml.F16, true
	return map[string]Spec{"tiny": tiny, "qwen2-q8": qwen, "llama-q4-mqa": q4, "tiny-f16-tied": f16}
}

func write(t *testing.T, s Spec) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteTo(&buf, s); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The streamed file is byte for byte what gguf.Write makes of the same tensors held in memory.
func TestStreamedEqualsInMemory(t *testing.T) {
	for name, s := range specs() {
		t.Run(name, func(t *testing.T) {
			var tensors []gguf.WriteTensor
			for _, ts := range layout(s) {
				var data bytes.Buffer
				if err := ts.write(&data, s); err != nil {
					t.Fatal(err)
				}
				tensors = append(tensors, gguf.WriteTensor{Name: ts.name, Dims: ts.dims, Type: ts.typ, Data: data.Bytes()})
			}
			var want bytes.Buffer
			if err := gguf.Write(&want, metadata(s), tensors); err != nil {
				t.Fatal(err)
			}
			if got := write(t, s); !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("streamed file (%d bytes) differs from gguf.Write's (%d bytes)", len(got), want.Len())
			}
		})
	}
}

func TestFileReadsBack(t *testing.T) {
	for name, s := range specs() {
		t.Run(name, func(t *testing.T) {
			f, err := gguf.Parse(write(t, s))
			if err != nil {
				t.Fatal(err)
			}
			a := s.Arch + "."
			for key, want := range map[string]uint64{
				a + "context_length": uint64(s.Context), a + "embedding_length": uint64(s.Dim),
				a + "block_count": uint64(s.Layers), a + "feed_forward_length": uint64(s.FFN),
				a + "attention.head_count": uint64(s.Heads), a + "attention.head_count_kv": uint64(s.KVHeads),
				a + "rope.dimension_count":    uint64(s.Dim / s.Heads),
				"tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
			} {
				if got, err := f.Uint(key); err != nil || got != want {
					t.Errorf("%s = %d, %v; want %d", key, got, err, want)
				}
			}
			if arch, err := f.String("general.architecture"); err != nil || arch != s.Arch {
				t.Errorf("general.architecture = %q, %v", arch, err)
			}
			if base, err := f.Float(a + "rope.freq_base"); err != nil || base != s.RopeBase {
				t.Errorf("rope.freq_base = %g, %v; want %g", base, err, s.RopeBase)
			}

			want := layout(s)
			if len(f.Tensors) != len(want) {
				t.Fatalf("%d tensors, want %d", len(f.Tensors), len(want))
			}
			_, hasOutput := f.Tensor("output.weight")
			_, hasBias := f.Tensor("blk.0.attn_q.bias")
			if hasOutput == s.Tied || hasBias != (s.Arch == "qwen2") {
				t.Errorf("output.weight present %v with tied %v; attn_q.bias present %v for %s",
					hasOutput, s.Tied, hasBias, s.Arch)
			}
			for _, w := range want {
				info, ok := f.Tensor(w.name)
				if !ok {
					t.Fatalf("tensor %s missing", w.name)
				}
				data, err := f.TensorData(info)
				if err != nil {
					t.Fatal(err)
				}
				x, err := ggml.Dequantize(info.Type, data, int(info.Elements()))
				if err != nil {
					t.Fatalf("%s: %v", w.name, err)
				}
				checkDistribution(t, w, x)
			}

			vocab, err := tokenizer.FromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(vocab.Tokens) != s.Vocab {
				t.Errorf("vocabulary of %d tokens, want %d", len(vocab.Tokens), s.Vocab)
			}
			seen := map[string]bool{}
			for _, tok := range vocab.Tokens {
				if seen[tok] {
					t.Fatalf("token %q appears twice", tok)
				}
				seen[tok] = true
			}
		})
	}
}

// The files load as models: HParamsFromGGUF reads back the spec and CheckTensors accepts the
// tensors.
func TestHParamsRoundTrip(t *testing.T) {
	for name, s := range specs() {
		t.Run(name, func(t *testing.T) {
			f, err := gguf.Parse(write(t, s))
			if err != nil {
				t.Fatal(err)
			}
			h, err := model.HParamsFromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			eps := float64(float32(1e-5))
			if s.Arch == "qwen2" {
				eps = float64(float32(1e-6))
			}
			want := model.HParams{
				Arch: s.Arch, ContextLength: s.Context, Dim: s.Dim, Layers: s.Layers, FFN: s.FFN,
				Heads: s.Heads, KVHeads: s.KVHeads, RopeDim: s.Dim / s.Heads, RopeBase: s.RopeBase,
				RopeScaling: "none", RopeScale: 1, RMSEps: eps, Vocab: s.Vocab, TiedOutput: s.Tied,
				RopeNeoX: s.Arch == "qwen2",
			}
			if h != want {
				t.Errorf("HParamsFromGGUF = %+v\nwant %+v", h, want)
			}
			if err := model.CheckTensors(f, h); err != nil {
				t.Error(err)
			}
		})
	}
}

// checkDistribution checks that x has the scale the package promises for w.
func checkDistribution(t *testing.T, w tensor, x []float32) {
	t.Helper()
	var sum, sq float64
	for _, v := range x {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(x))
	mean, std := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
	var wantMean, wantStd float64
	switch w.kind {
	case norm:
		wantMean, wantStd = 1, 0.5/math.Sqrt(12)
	case bias:
		wantMean, wantStd = 0, 1/math.Sqrt(12)
	default:
		wantMean, wantStd = 0, 1/math.Sqrt(float64(w.rowLen()))
	}
	// Loose: small tensors have few samples, Q4_0 adds rounding noise.
	if tol := 5 * wantStd / math.Sqrt(n); math.Abs(mean-wantMean) > tol+0.02*wantStd {
		t.Errorf("%s: mean %g, want %g", w.name, mean, wantMean)
	}
	if math.Abs(std/wantStd-1) > 0.05+2.5/math.Sqrt(n) {
		t.Errorf("%s: standard deviation %g, want %g", w.name, std, wantStd)
	}
}

func TestDeterministic(t *testing.T) {
	s := Tiny()
	a, b := write(t, s), write(t, s)
	if !bytes.Equal(a, b) {
		t.Fatal("two writes of the same spec differ")
	}
	s.Seed++
	if bytes.Equal(a, write(t, s)) {
		t.Fatal("another seed gives the same file")
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := Write(path, Tiny()); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !bytes.Equal(mustRead(t, f, "token_embd.weight"), tensorBytes(t, Tiny(), "token_embd.weight")) {
		t.Fatal("token_embd.weight read back differs")
	}
}

func mustRead(t *testing.T, f *gguf.File, name string) []byte {
	t.Helper()
	info, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("tensor %s missing", name)
	}
	data, err := f.TensorData(info)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func tensorBytes(t *testing.T, s Spec, name string) []byte {
	t.Helper()
	for _, ts := range layout(s) {
		if ts.name == name {
			var buf bytes.Buffer
			if err := ts.write(&buf, s); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}
	}
	t.Fatalf("no tensor %s", name)
	return nil
}

func TestPresetsValid(t *testing.T) {
	for name, s := range map[string]Spec{"tiny": Tiny(), "medium": Medium(), "7b-4l": Llama2_7B_4L()} {
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	m := Medium()
	if m.Dim != 1024 || m.Layers != 8 || m.Heads != 16 || m.KVHeads != 4 || m.FFN != 2816 || m.Vocab != 32000 || m.Context != 4096 {
		t.Errorf("Medium() = %+v", m)
	}
	l := Llama2_7B_4L()
	if l.Dim != 4096 || l.Layers != 4 || l.Heads != 32 || l.KVHeads != 32 || l.FFN != 11008 || l.Vocab != 32000 || l.Context != 4096 {
		t.Errorf("Llama2_7B_4L() = %+v", l)
	}
}

func TestValidateRejects(t *testing.T) {
	for name, edit := range map[string]func(*Spec){
		"arch":         func(s *Spec) { s.Arch = "gpt2" },
		"odd head dim": func(s *Spec) { s.Heads = 64 },
		"heads % kv":   func(s *Spec) { s.KVHeads = 3 },
		"small vocab":  func(s *Spec) { s.Vocab = 258 },
		"zero layers":  func(s *Spec) { s.Layers = 0 },
		"weight type":  func(s *Spec) { s.WeightType = ggml.Q4_K },
		"block tiling": func(s *Spec) { s.WeightType, s.FFN = ggml.Q8_0, 100 },
		"rope base":    func(s *Spec) { s.RopeBase = 0 },
	} {
		s := Tiny()
		edit(&s)
		if err := WriteTo(&bytes.Buffer{}, s); err == nil {
			t.Errorf("%s: no error for %+v", name, s)
		}
	}
}

// Writing streams: a file of 200 MB never sits in memory (nor do the 7B-shaped preset's
// 2 GB, which take longer to draw).
func TestWriteStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200 MB")
	}
	s := Medium()
	s.Layers = 2
	before, err := rss(true)
	if err != nil {
		t.Logf("memory not checked: %v", err)
	}
	out := &countingWriter{w: io.Discard}
	if err := WriteTo(out, s); err != nil {
		t.Fatal(err)
	}
	var want uint64
	for _, ts := range layout(s) {
		want += alignUp(ts.bytes(), gguf.DefaultAlignment)
	}
	if out.n < want || out.n > want+4<<20 {
		t.Errorf("wrote %d bytes, want the %d of the tensors plus a header", out.n, want)
	}
	if err != nil {
		return
	}
	peak, err := rss(false)
	if err != nil {
		t.Fatal(err)
	}
	grew := int64(peak) - int64(before)
	t.Logf("resident memory grew by %d MB at most while writing a %d MB file", grew>>20, out.n>>20)
	if grew > int64(out.n/2) {
		t.Errorf("resident memory grew by %d MB: the %d MB file was held in memory", grew>>20, out.n>>20)
	}
}

// rss reads Linux's /proc/self/status: with reset, the current resident set size after
// resetting the peak; without, the peak since.
func rss(reset bool) (uint64, error) {
	key := "VmHWM:"
	if reset {
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			return 0, err
		}
		key = "VmRSS:"
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if kb, ok := strings.CutPrefix(line, key); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
			return n << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", key)
}

func BenchmarkWriteMedium(b *testing.B) {
	for b.Loop() {
		if err := WriteTo(io.Discard, Medium()); err != nil {
			b.Fatal(err)
		}
	}
}
