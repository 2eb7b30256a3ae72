// Package synth writes synthetic LLaMA-family GGUF models with random weights, for tests and
// benchmarks of shapes no real checkpoint at hand has.
//
// The files are laid out as llama.cpp writes them: the same tensor names, shapes and metadata
// keys, and a minimal SentencePiece ("llama") vocabulary with <unk>, <s>, </s>, the 256 byte
// tokens and filler pieces, so that they load like real models. The weights are deterministic
// in Spec.Seed and each tensor's name, and scaled so that activations stay O(1) through the
// layers: every matrix is uniform with standard deviation 1/sqrt(fan_in) (a unit-RMS input
// gives unit-RMS outputs, attention scores of unit spread, logits of unit spread), norm
// weights are uniform around 1, and qwen2's Q/K/V biases are uniform in ±0.5.
//
// Writing streams: tensors are generated, encoded and written a block of rows at a time (the
// blocks of a batch drawn in parallel), so even the 7B-shaped preset needs only tens of
// megabytes besides the output.
package synth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
)

// Spec is the shape of a synthetic model.
type Spec struct {
	Arch       string    // "llama" (adjacent-pair RoPE), "qwen2" (NeoX RoPE, Q/K/V biases) or "qwen3" (NeoX, Q/K norms) or "phi3" (NeoX, fused attn_qkv and gate/up) or "gemma2" (NeoX, post-norms, tied, no rope keys)
	Dim        int       // embedding length
	Layers     int       // transformer blocks
	Heads      int       // query heads; Dim is a multiple of it, head_dim = Dim/Heads is even
	KVHeads    int       // key/value heads; divides Heads (GQA when fewer)
	FFN        int       // feed-forward hidden size
	Vocab      int       // tokens, at least the 259 of <unk>, <s>, </s> and the byte tokens
	Context    int       // trained context length written to the metadata
	WeightType ggml.Type // F32, F16, Q8_0, Q4_0 or a K-quant (random blocks) for the 2D matrices; norms and biases are F32
	Tied       bool      // no output.weight: the classifier is token_embd.weight
	RopeBase   float64   // rope.freq_base
	Seed       uint64    // weights are a function of Seed and the tensor name

	// HeadDim, if set, is attention.key_length/value_length: a head width
	// other than Dim/Heads (qwen3 writes it always).
	HeadDim int
	// Llama3, if set, writes rope_freqs.weight as llama.cpp's converter does
	// for a Llama 3.1 rope_scaling of type "llama3".
	Llama3 *Llama3Rope
	// Yarn, if set, writes rope.scaling.type "yarn" with this factor and
	// original context (llama.cpp's converter for a rope_scaling of type yarn).
	Yarn *YarnRope
	// LongRope, if set (phi3), writes rope_factors_long/short.weight, the
	// original context and rope.scaling.attn_factor as llama.cpp's converter
	// does for Phi-3's longrope.
	LongRope *LongRope
	// SlidingWindow, if positive, writes attention.sliding_window.
	SlidingWindow int
	// AttnSoftcap and FinalSoftcap (gemma2) write attention.logit_softcapping
	// and final_logit_softcapping.
	AttnSoftcap, FinalSoftcap float64
	// LinearRope, if set, writes rope.scaling.type "linear" with this factor
	// (Gemma 3 4B and up: 8, on the global layers only).
	LinearRope float64
}

// Llama3Rope is Hugging Face's rope_scaling of type "llama3".
type Llama3Rope struct {
	Factor, LowFreqFactor, HighFreqFactor float64
	OrigContext                           int
}

// LongRope is Phi-3's longrope: the factors are made up here (short ones
// near 1, long ones up to about 8), deterministically.
type LongRope struct {
	OrigContext int // original_max_position_embeddings; Context is the extended one
}

// YarnRope is a rope_scaling of type "yarn".
type YarnRope struct {
	Factor      float64
	OrigContext int
}

// headDim is the width of one attention head.
func (s Spec) headDim() int {
	if s.HeadDim > 0 {
		return s.HeadDim
	}
	return s.Dim / s.Heads
}

// Tiny is a model small enough for exhaustive float64 tests: GQA, two layers, vocabulary 320.
func Tiny() Spec {
	return Spec{Arch: "llama", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 160, Vocab: 320,
		Context: 256, WeightType: ggml.F32, RopeBase: 10000, Seed: 1}
}

// Medium is a model of roughly 200M parameters for benchmarks, F16.
func Medium() Spec {
	return Spec{Arch: "llama", Dim: 1024, Layers: 8, Heads: 16, KVHeads: 4, FFN: 2816, Vocab: 32000,
		Context: 4096, WeightType: ggml.F16, RopeBase: 10000, Seed: 1}
}

// Llama2_7B_4L has Llama-2-7B's layer shapes and vocabulary with 4 of its 32 layers, F16:
// per-layer costs of the real model at an eighth of its size (2 GB).
func Llama2_7B_4L() Spec {
	return Spec{Arch: "llama", Dim: 4096, Layers: 4, Heads: 32, KVHeads: 32, FFN: 11008, Vocab: 32000,
		Context: 4096, WeightType: ggml.F16, RopeBase: 10000, Seed: 1}
}

// firstFiller is the id of the first filler piece: <unk>, <s>, </s>, then 256 byte tokens.
const firstFiller = 3 + 256

// Validate reports why s cannot be written.
func (s Spec) Validate() error {
	switch {
	case s.Arch != "llama" && s.Arch != "qwen2" && s.Arch != "qwen3" && s.Arch != "phi3" && s.Arch != "gemma2" && s.Arch != "gemma3":
		return fmt.Errorf("synth: architecture %q, want \"llama\", \"qwen2\", \"qwen3\", \"phi3\", \"gemma2\" or \"gemma3\"", s.Arch)
	case s.Arch == "gemma3" && (!s.Tied || s.Llama3 != nil || s.Yarn != nil || s.LongRope != nil):
		return fmt.Errorf("synth: gemma3 is tied, without llama3, yarn or longrope")
	case s.Arch == "gemma2" && (!s.Tied || s.RopeBase != 10000 || s.Llama3 != nil || s.Yarn != nil || s.LongRope != nil):
		// llama.cpp's converter drops lm_head and writes no rope keys for Gemma 2
		return fmt.Errorf("synth: gemma2 is tied, with rope base 10000 and no rope scaling")
	case s.Arch != "gemma2" && (s.AttnSoftcap != 0 || s.FinalSoftcap != 0):
		return fmt.Errorf("synth: softcaps are gemma2's")
	case s.Dim < 1 || s.Layers < 1 || s.Heads < 1 || s.KVHeads < 1 || s.FFN < 1 || s.Context < 1:
		return fmt.Errorf("synth: dim %d, layers %d, heads %d, kv heads %d, ffn %d, context %d must all be positive",
			s.Dim, s.Layers, s.Heads, s.KVHeads, s.FFN, s.Context)
	case s.HeadDim < 0 || s.HeadDim%2 != 0:
		return fmt.Errorf("synth: head dim %d must be even", s.HeadDim)
	case s.HeadDim == 0 && (s.Dim%s.Heads != 0 || (s.Dim/s.Heads)%2 != 0):
		return fmt.Errorf("synth: dim %d over %d heads must give an even head dimension", s.Dim, s.Heads)
	case s.Heads%s.KVHeads != 0:
		return fmt.Errorf("synth: kv heads %d must divide heads %d", s.KVHeads, s.Heads)
	case s.Vocab < firstFiller:
		return fmt.Errorf("synth: vocabulary %d is smaller than the %d special and byte tokens", s.Vocab, firstFiller)
	case !(s.RopeBase > 0):
		return fmt.Errorf("synth: rope base %g must be positive", s.RopeBase)
	}
	switch s.WeightType {
	case ggml.F32, ggml.F16, ggml.Q8_0, ggml.Q4_0, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.IQ4_NL, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K:
	default:
		return fmt.Errorf("synth: weight type %v, want F32, F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q4_K, Q5_K or Q6_K", s.WeightType)
	}
	// Every matrix row is Dim or FFN long (ffn_down's); quantized blocks must tile it.
	if bs := s.WeightType.BlockSize(); s.Dim%bs != 0 || s.FFN%bs != 0 || s.Heads*s.headDim()%bs != 0 {
		return fmt.Errorf("synth: dim %d, ffn %d and heads*head dim %d must be multiples of %v's block of %d", s.Dim, s.FFN, s.Heads*s.headDim(), s.WeightType, bs)
	}
	if s.Llama3 != nil && (s.Arch != "llama" || !(s.Llama3.Factor > 0) || !(s.Llama3.HighFreqFactor > s.Llama3.LowFreqFactor) || s.Llama3.OrigContext < 1) {
		return fmt.Errorf("synth: llama3 rope %+v: llama only, positive factor and context, high frequency factor above low", *s.Llama3)
	}
	if s.LongRope != nil && (s.Arch != "phi3" || s.LongRope.OrigContext < 2 || s.LongRope.OrigContext >= s.Context) {
		return fmt.Errorf("synth: longrope: phi3 only, original context %d in 2..context %d", s.LongRope.OrigContext, s.Context)
	}
	if s.Yarn != nil && (!(s.Yarn.Factor > 0) || s.Yarn.OrigContext < 1) {
		return fmt.Errorf("synth: yarn rope %+v: factor and original context must be positive", *s.Yarn)
	}
	return nil
}

// Write writes the model s to a new file at path.
func Write(path string, s Spec) (err error) {
	if err := s.Validate(); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("synth: %w", cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err := WriteTo(w, s); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

// WriteTo writes the model s to w as a GGUF v3 file.
func WriteTo(w io.Writer, s Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	kv := metadata(s)
	tensors := layout(s)
	if err := writeHeader(w, kv, tensors); err != nil {
		return err
	}
	cw := &countingWriter{w: w}
	for _, t := range tensors {
		if err := t.write(cw, s); err != nil {
			return fmt.Errorf("synth: tensor %s: %w", t.name, err)
		}
		if err := cw.padTo(gguf.DefaultAlignment); err != nil {
			return fmt.Errorf("synth: tensor %s: %w", t.name, err)
		}
	}
	return nil
}

// writeHeader writes the GGUF header (metadata, tensor infos, padding) through gguf.Write,
// without the tensor data. gguf.Write takes the data in memory; it is handed zero slices of
// the right lengths instead (one shared mapping whose pages are never touched), the header's
// length is measured by a first pass that writes nowhere, and a second pass stops after it.
func writeHeader(w io.Writer, kv []gguf.KV, tensors []tensor) error {
	var largest, data uint64
	for _, t := range tensors {
		largest = max(largest, t.bytes())
		data += alignUp(t.bytes(), gguf.DefaultAlignment)
	}
	zero, release, err := zeros(int(largest))
	if err != nil {
		return fmt.Errorf("synth: placeholder data: %w", err)
	}
	defer release()
	placeholders := make([]gguf.WriteTensor, len(tensors))
	for i, t := range tensors {
		placeholders[i] = gguf.WriteTensor{Name: t.name, Dims: t.dims, Type: t.typ, Data: zero[:t.bytes()]}
	}

	measure := &countingWriter{w: io.Discard}
	if err := gguf.Write(measure, kv, placeholders); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	header := &prefixWriter{w: w, left: measure.n - data}
	if err := gguf.Write(header, kv, placeholders); !errors.Is(err, errPrefixDone) {
		if err == nil {
			err = errors.New("gguf.Write ended before the tensor data")
		}
		return fmt.Errorf("synth: writing the header: %w", err)
	}
	return nil
}

// metadata is the file's key-value section, with llama.cpp's keys and value types.
func metadata(s Spec) []gguf.KV {
	a := s.Arch + "."
	eps := float32(1e-5)
	if s.Arch != "llama" {
		eps = 1e-6
	}
	headDim := s.headDim()
	kv := []gguf.KV{
		{Key: "general.architecture", Value: s.Arch},
		{Key: "general.name", Value: fmt.Sprintf("synthetic %s %dx%d seed %d", s.Arch, s.Layers, s.Dim, s.Seed)},
		{Key: "general.file_type", Value: fileType(s.WeightType)},
		{Key: a + "context_length", Value: uint32(s.Context)},
		{Key: a + "embedding_length", Value: uint32(s.Dim)},
		{Key: a + "block_count", Value: uint32(s.Layers)},
		{Key: a + "feed_forward_length", Value: uint32(s.FFN)},
		{Key: a + "attention.head_count", Value: uint32(s.Heads)},
		{Key: a + "attention.head_count_kv", Value: uint32(s.KVHeads)},
		{Key: a + "attention.layer_norm_rms_epsilon", Value: eps},
	}
	switch s.Arch {
	case "gemma2": // Gemma 2's converter writes no rope keys (base 10000, every dimension)
	case "gemma3": // Gemma 3's writes the base only
		kv = append(kv, gguf.KV{Key: a + "rope.freq_base", Value: float32(s.RopeBase)})
	default:
		kv = append(kv, gguf.KV{Key: a + "rope.freq_base", Value: float32(s.RopeBase)},
			gguf.KV{Key: a + "rope.dimension_count", Value: uint32(headDim)})
	}
	if s.LinearRope != 0 {
		kv = append(kv, gguf.KV{Key: a + "rope.scaling.type", Value: "linear"},
			gguf.KV{Key: a + "rope.scaling.factor", Value: float32(s.LinearRope)})
	}
	if s.HeadDim > 0 || s.Arch == "qwen3" || s.Arch == "gemma2" || s.Arch == "gemma3" {
		kv = append(kv, gguf.KV{Key: a + "attention.key_length", Value: uint32(headDim)},
			gguf.KV{Key: a + "attention.value_length", Value: uint32(headDim)})
	}
	if s.Yarn != nil {
		kv = append(kv, gguf.KV{Key: a + "rope.scaling.type", Value: "yarn"},
			gguf.KV{Key: a + "rope.scaling.factor", Value: float32(s.Yarn.Factor)},
			gguf.KV{Key: a + "rope.scaling.original_context_length", Value: uint32(s.Yarn.OrigContext)})
	}
	if s.AttnSoftcap != 0 {
		kv = append(kv, gguf.KV{Key: a + "attention.logit_softcapping", Value: float32(s.AttnSoftcap)})
	}
	if s.FinalSoftcap != 0 {
		kv = append(kv, gguf.KV{Key: a + "final_logit_softcapping", Value: float32(s.FinalSoftcap)})
	}
	if s.SlidingWindow > 0 {
		kv = append(kv, gguf.KV{Key: a + "attention.sliding_window", Value: uint32(s.SlidingWindow)})
	}
	if r := s.LongRope; r != nil {
		scale := float64(s.Context) / float64(r.OrigContext)
		kv = append(kv, gguf.KV{Key: a + "rope.scaling.original_context_length", Value: uint32(r.OrigContext)},
			gguf.KV{Key: a + "rope.scaling.attn_factor", Value: float32(math.Sqrt(1 + math.Log(scale)/math.Log(float64(r.OrigContext))))})
	}
	tokens, scores, types := vocabulary(s.Vocab)
	return append(kv,
		gguf.KV{Key: "tokenizer.ggml.model", Value: "llama"},
		gguf.KV{Key: "tokenizer.ggml.tokens", Value: tokens},
		gguf.KV{Key: "tokenizer.ggml.scores", Value: scores},
		gguf.KV{Key: "tokenizer.ggml.token_type", Value: types},
		gguf.KV{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(0)},
		gguf.KV{Key: "tokenizer.ggml.bos_token_id", Value: uint32(1)},
		gguf.KV{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
	)
}

// fileType is llama.cpp's general.file_type (enum llama_ftype) for a model of weight type t.
func fileType(t ggml.Type) uint32 {
	switch t {
	case ggml.F16:
		return 1 // LLAMA_FTYPE_MOSTLY_F16
	case ggml.Q4_0:
		return 2 // LLAMA_FTYPE_MOSTLY_Q4_0
	case ggml.Q8_0:
		return 7 // LLAMA_FTYPE_MOSTLY_Q8_0
	case ggml.Q4_K:
		return 15 // LLAMA_FTYPE_MOSTLY_Q4_K_M
	case ggml.Q5_K:
		return 17 // LLAMA_FTYPE_MOSTLY_Q5_K_M
	case ggml.Q6_K:
		return 18 // LLAMA_FTYPE_MOSTLY_Q6_K
	case ggml.Q4_1:
		return 3 // LLAMA_FTYPE_MOSTLY_Q4_1
	case ggml.Q5_0:
		return 8 // LLAMA_FTYPE_MOSTLY_Q5_0
	case ggml.Q5_1:
		return 9 // LLAMA_FTYPE_MOSTLY_Q5_1
	case ggml.IQ4_NL:
		return 25 // LLAMA_FTYPE_MOSTLY_IQ4_NL
	default:
		return 0 // LLAMA_FTYPE_ALL_F32
	}
}

// Token types of llama.cpp's vocabularies (enum llama_token_type).
const (
	tokenNormal  = 1
	tokenUnknown = 2
	tokenControl = 3
	tokenByte    = 6
)

// vocabulary is a SentencePiece vocabulary of n tokens: <unk>, <s>, </s>, <0x00>..<0xFF>, then
// distinct filler pieces ("▁a", "a", "▁b", ..., "▁aa", ...) with decreasing scores.
func vocabulary(n int) (tokens []string, scores []float32, types []int32) {
	tokens = make([]string, n)
	scores = make([]float32, n)
	types = make([]int32, n)
	tokens[0], tokens[1], tokens[2] = "<unk>", "<s>", "</s>"
	types[0], types[1], types[2] = tokenUnknown, tokenControl, tokenControl
	for b := range 256 {
		tokens[3+b] = fmt.Sprintf("<0x%02X>", b)
		types[3+b] = tokenByte
	}
	for i := firstFiller; i < n; i++ {
		k := i - firstFiller
		piece := letters(k/2 + 1)
		if k%2 == 0 {
			piece = "▁" + piece
		}
		tokens[i] = piece
		scores[i] = -float32(k)
		types[i] = tokenNormal
	}
	return tokens, scores, types
}

// letters writes n >= 1 in bijective base 26: a..z, aa..zz, aaa...
func letters(n int) string {
	var b []byte
	for ; n > 0; n = (n - 1) / 26 {
		b = append([]byte{byte('a' + (n-1)%26)}, b...)
	}
	return string(b)
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

var zeroPad [gguf.DefaultAlignment]byte

func (c *countingWriter) padTo(align uint64) error {
	_, err := c.Write(zeroPad[:alignUp(c.n, align)-c.n])
	return err
}

// errPrefixDone stops gguf.Write once the header has been written.
var errPrefixDone = errors.New("synth: header written")

// prefixWriter passes the first left bytes on to w, then refuses the rest with errPrefixDone.
type prefixWriter struct {
	w    io.Writer
	left uint64
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	n := int(min(uint64(len(b)), p.left))
	m, err := p.w.Write(b[:n])
	p.left -= uint64(m)
	if err != nil {
		return m, err
	}
	if m < len(b) {
		return m, errPrefixDone
	}
	return m, nil
}
