// Package llama runs LLaMA-family models (llama, qwen2) on the GPU: weights
// uploaded once in their own type, activations and a pluggable KV cache
// allocated once per context, chunked prefill and single-token decode, each
// step recorded into one submit.
package llama

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/model"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama2c"
	"github.com/freqkv/freqkv/model/tokenizer"
	"github.com/freqkv/freqkv/shaders"
)

// Model holds a model's weights on one device and its tokenizer.
type Model struct {
	H   model.HParams
	Tok tokenizer.Tokenizer

	// Converted lists tensor types the kernels don't take, converted at load
	// (e.g. "Q4_K -> q8_0 (blk.0.attn_q.weight and 95 more)").
	Converted []string
	// WeightBytes is the device memory the weights occupy.
	WeightBytes int64

	dev *engine.Device
	ops *shaders.Ops

	tokEmbd *engine.Weight // (vocab, dim)
	layers  []layer
	outNorm *engine.Tensor // (1, dim)
	output  *engine.Weight // (vocab, dim); the embedding table when tied

	// ropeFactors are rope_freqs.weight's per-pair divisors (Llama 3), nil
	// without; they shape each context's rope table.
	ropeFactors []float64
	// ropeLong and ropeShort are phi3's longrope divisors, nil without.
	ropeLong, ropeShort []float64
}

type layer struct {
	attnNorm   *engine.Tensor // (1, dim)
	wq         *engine.Weight // (heads*headDim, dim)
	wk, wv     *engine.Weight // (kvHeads*headDim, dim)
	bq, bk, bv *engine.Tensor // qwen2 only: (1, out)
	qNorm      *engine.Tensor // qwen3 only: (1, headDim), per head before RoPE
	kNorm      *engine.Tensor
	wo         *engine.Weight // (dim, heads*headDim)
	ffnNorm    *engine.Tensor // (1, dim)
	postAttn   *engine.Tensor // gemma2 only: (1, dim), the attention output's norm
	postFFN    *engine.Tensor // gemma2 only: (1, dim), the feed-forward output's norm
	wGate      *engine.Weight // (ffn, dim)
	wUp        *engine.Weight // (ffn, dim)
	wDown      *engine.Weight // (dim, ffn)
}

// LoadOptions configures Load.
type LoadOptions struct {
	// Tokenizer is a llama2.c tokenizer.bin, needed for llama2.c checkpoints.
	Tokenizer string
	// Progress, if set, is called after each tensor with bytes done and total.
	Progress func(done, total int64)
	// BackwardTypes keeps matrices in the types the backward kernels read
	// (f32, f16, q8_0, q4_0) for training: the block types read natively
	// for inference are converted to q8_0 at load instead.
	BackwardTypes bool
}

// ErrNoTokenizer says a model file is not GGUF and no llama2.c tokenizer was given
// (LoadOptions.Tokenizer), without which a llama2.c checkpoint cannot load.
var ErrNoTokenizer = errors.New("not a GGUF file, and a llama2.c checkpoint needs its tokenizer file")

// Open reads a GGUF file, or converts a llama2.c checkpoint (with its
// tokenizer.bin) to GGUF in memory.
func Open(path string, opts LoadOptions) (*gguf.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open model: %w", err)
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	var magic [4]byte
	n := 0
	if err == nil {
		n, err = io.ReadFull(f, magic[:])
	}
	f.Close()
	switch {
	case n == 0 && err == io.EOF:
		return nil, fmt.Errorf("model %s: empty file", path)
	case err == io.ErrUnexpectedEOF:
		return nil, fmt.Errorf("model %s: %d bytes is too short for a model", path, n)
	case err != nil:
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	if string(magic[:]) == "GGUF" {
		return gguf.Open(path)
	}
	if opts.Tokenizer == "" {
		return nil, fmt.Errorf("%s: %w", path, ErrNoTokenizer)
	}
	ck, err := llama2c.ReadCheckpoint(path)
	if err != nil {
		return nil, fmt.Errorf("%w (and it is not GGUF)", err)
	}
	tok, err := llama2c.ReadTokenizer(opts.Tokenizer, ck.VocabSize)
	if err != nil {
		return nil, err // it names the file
	}
	var buf bytes.Buffer
	if err := llama2c.Convert(&buf, ck, tok); err != nil {
		return nil, fmt.Errorf("convert llama2.c checkpoint %s: %w", path, err)
	}
	return gguf.Parse(buf.Bytes())
}

// Load uploads a model's weights to dev.
func Load(dev *engine.Device, f *gguf.File, opts LoadOptions) (*Model, error) {
	h, err := model.HParamsFromGGUF(f)
	if err != nil {
		return nil, err
	}
	if err := model.CheckTensors(f, h); err != nil {
		return nil, err
	}
	tok, err := LoadTokenizer(f)
	if err != nil {
		return nil, err
	}
	m := &Model{H: h, Tok: tok, dev: dev, ops: shaders.New(dev)}
	up := uploader{dev: dev, f: f, converted: map[string][]string{}, progress: opts.Progress, backwardTypes: opts.BackwardTypes}
	for _, t := range f.Tensors {
		up.total += int64(t.Bytes())
	}
	m.tokEmbd = up.weight("token_embd.weight")
	for i := 0; i < h.Layers; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		l := layer{
			attnNorm: up.vector(p + "attn_norm.weight"),
			wo:       up.weight(p + "attn_output.weight"),
			ffnNorm:  up.vector(p + "ffn_norm.weight"),
			wDown:    up.weight(p + "ffn_down.weight"),
		}
		l.wq, l.wk, l.wv = up.qkv(p, h)
		l.wGate, l.wUp = up.gateUp(p, h)
		// Q/K/V biases: qwen2 has them; llama files may too (llama.cpp
		// loads them wherever present, and so do we).
		l.bq, l.bk, l.bv = up.optional(p+"attn_q.bias"), up.optional(p+"attn_k.bias"), up.optional(p+"attn_v.bias")
		if h.QKNorm {
			l.qNorm, l.kNorm = up.vector(p+"attn_q_norm.weight"), up.vector(p+"attn_k_norm.weight")
		}
		if h.PostNorms {
			l.postAttn, l.postFFN = up.vector(p+"post_attention_norm.weight"), up.vector(p+"post_ffw_norm.weight")
		}
		m.layers = append(m.layers, l)
	}
	m.outNorm = up.vector("output_norm.weight")
	if h.RopeFactors {
		m.ropeFactors = up.host("rope_freqs.weight")
	}
	if h.LongRope {
		m.ropeLong, m.ropeShort = up.host("rope_factors_long.weight"), up.host("rope_factors_short.weight")
	}
	if h.TiedOutput {
		m.output = m.tokEmbd
	} else {
		m.output = up.weight("output.weight")
	}
	if up.err != nil {
		m.Release()
		return nil, up.err
	}
	for from, names := range up.converted {
		m.Converted = append(m.Converted, fmt.Sprintf("%s (%s and %d more)", from, names[0], len(names)-1))
	}
	m.WeightBytes = up.bytes
	return m, nil
}

// LoadTokenizer builds the tokenizer of f, checked as Load checks it: its
// errors say "tokenizer:" already.
func LoadTokenizer(f *gguf.File) (tokenizer.Tokenizer, error) {
	vocab, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, err
	}
	return tokenizer.New(vocab)
}

// Device is the device the model lives on.
func (m *Model) Device() *engine.Device { return m.dev }

// Release frees the weights.
func (m *Model) Release() {
	for _, w := range m.all() {
		w.Release()
	}
	m.ops.Release()
}

type releaser interface{ Release() }

func (m *Model) all() []releaser {
	var out []releaser
	add := func(r ...releaser) {
		for _, x := range r {
			switch v := x.(type) {
			case *engine.Weight:
				if v != nil {
					out = append(out, v)
				}
			case *engine.Tensor:
				if v != nil {
					out = append(out, v)
				}
			}
		}
	}
	add(m.tokEmbd, m.outNorm)
	if m.output != m.tokEmbd {
		add(m.output)
	}
	for _, l := range m.layers {
		add(l.attnNorm, l.wq, l.wk, l.wv, l.bq, l.bk, l.bv, l.qNorm, l.kNorm, l.wo, l.ffnNorm, l.postAttn, l.postFFN, l.wGate, l.wUp, l.wDown)
	}
	return out
}

// uploader copies tensors to the device, converting types the kernels
// don't take; the first error sticks and later calls do nothing.
type uploader struct {
	dev       *engine.Device
	f         *gguf.File
	err       error
	bytes     int64
	done      int64
	total     int64
	progress  func(done, total int64)
	converted map[string][]string
	// backwardTypes: convert what the backward kernels can't read (LoadOptions)
	backwardTypes bool
}

func (u *uploader) info(name string) (*gguf.TensorInfo, []byte, bool) {
	if u.err != nil {
		return nil, nil, false
	}
	t, ok := u.f.Tensor(name)
	if !ok {
		u.err = fmt.Errorf("model has no tensor %q", name)
		return nil, nil, false
	}
	data, err := u.f.TensorData(t)
	if err != nil {
		u.err = fmt.Errorf("tensor %q: %w", name, err)
		return nil, nil, false
	}
	u.done += int64(t.Bytes())
	if u.progress != nil {
		u.progress(u.done, u.total)
	}
	return t, data, true
}

// deviceType maps a GGUF type to the one the kernels read, and says whether
// the data must be converted.
func deviceType(t ggml.Type) (engine.DType, bool) {
	switch t {
	case ggml.F32:
		return engine.F32, false
	case ggml.F16:
		return engine.F16, false
	case ggml.Q8_0:
		return engine.Q8_0, false
	case ggml.Q4_0:
		return engine.Q4_0, false
	case ggml.Q4_K:
		return engine.Q4_K, false
	case ggml.Q5_K:
		return engine.Q5_K, false
	case ggml.Q6_K:
		return engine.Q6_K, false
	case ggml.Q4_1:
		return engine.Q4_1, false
	case ggml.Q5_0:
		return engine.Q5_0, false
	case ggml.Q5_1:
		return engine.Q5_1, false
	case ggml.IQ4_NL:
		return engine.IQ4_NL, false
	case ggml.BF16:
		return engine.F16, true
	default:
		// The rest (those Dequantize takes): requantised to Q8_0, whose
		// error (< 0.4% of a block's max) is far below theirs.
		return engine.Q8_0, true
	}
}

func (u *uploader) weight(name string) *engine.Weight {
	if ws := u.split(name); ws != nil {
		return ws[0]
	}
	return nil
}

// split uploads a matrix as consecutive blocks of rows, one weight each
// (fused matrices); no counts: the whole matrix as one weight.
func (u *uploader) split(name string, counts ...int) []*engine.Weight {
	t, data, ok := u.info(name)
	if !ok {
		return nil
	}
	if len(t.Dims) != 2 {
		u.err = fmt.Errorf("tensor %q has %d dimensions, want 2", name, len(t.Dims))
		return nil
	}
	cols, rows := int(t.Dims[0]), int(t.Dims[1])
	if counts == nil {
		counts = []int{rows}
	}
	if err := ggml.CheckScales(t.Type, data); err != nil {
		u.err = fmt.Errorf("tensor %q: %w", name, err)
		return nil
	}
	dt, convert := deviceType(t.Type)
	if u.backwardTypes && dt != engine.F32 && dt != engine.F16 && dt != engine.Q8_0 && dt != engine.Q4_0 {
		dt, convert = engine.Q8_0, true
	}
	if dt == engine.Q8_0 && cols%32 != 0 {
		dt = engine.F16
	}
	if convert {
		vals, err := ggml.Dequantize(t.Type, data, rows*cols)
		if err != nil {
			u.err = fmt.Errorf("tensor %q: %w", name, err)
			return nil
		}
		target := ggml.F16
		if dt == engine.Q8_0 {
			target = ggml.Q8_0
		}
		data, err = ggml.Quantize(target, vals)
		if err != nil {
			u.err = fmt.Errorf("tensor %q: convert %s to %s: %w", name, t.Type, target, err)
			return nil
		}
		key := fmt.Sprintf("%s -> %s", t.Type, dt)
		u.converted[key] = append(u.converted[key], name)
	}
	rowBytes := len(data) / rows
	var out []*engine.Weight
	r0 := 0
	for _, n := range counts {
		label := name
		if len(counts) > 1 {
			label = fmt.Sprintf("%s[%d:%d]", name, r0, r0+n)
		}
		w, err := u.dev.UploadWeight(label, dt, n, cols, data[r0*rowBytes:(r0+n)*rowBytes], 0)
		if err != nil {
			u.err = err
			return nil
		}
		u.bytes += int64(w.Bytes())
		out = append(out, w)
		r0 += n
	}
	return out
}

// optional uploads a 1-D tensor if the file has it.
func (u *uploader) optional(name string) *engine.Tensor {
	if _, ok := u.f.Tensor(name); !ok {
		return nil
	}
	return u.vector(name)
}

// host reads a tensor into host memory (rope factors shape a table built
// on the host).
func (u *uploader) host(name string) []float64 {
	t, data, ok := u.info(name)
	if !ok {
		return nil
	}
	vals, err := ggml.Dequantize(t.Type, data, int(t.Elements()))
	if err != nil {
		u.err = fmt.Errorf("tensor %q: %w", name, err)
		return nil
	}
	out := make([]float64, len(vals))
	for i, v := range vals {
		out[i] = float64(v)
	}
	return out
}

// vector uploads a 1-D tensor (norm weights, biases) as f32.
func (u *uploader) vector(name string) *engine.Tensor {
	t, data, ok := u.info(name)
	if !ok {
		return nil
	}
	n := int(t.Elements())
	vals, err := ggml.Dequantize(t.Type, data, n)
	if err != nil {
		u.err = fmt.Errorf("tensor %q: %w", name, err)
		return nil
	}
	v, err := u.dev.NewTensor(name, engine.F32, 1, n)
	if err != nil {
		u.err = err
		return nil
	}
	buf := make([]byte, 4*n)
	for i, x := range vals {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	if err := v.Upload(buf); err != nil {
		u.err = err
		return nil
	}
	u.bytes += int64(v.Bytes())
	return v
}
