package llama2c

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"

	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
)

// Hyper-parameters llama2.c hard-codes in run.c rather than storing.
const (
	RMSEpsilon = 1e-5
	RopeBase   = 10000
)

// Token ids and types fixed by llama2.c's SentencePiece tokenizers.
const (
	unkID = 0
	bosID = 1
	eosID = 2

	typeNormal  = 1
	typeUnknown = 2
	typeControl = 3
	typeByte    = 6
)

var byteToken = regexp.MustCompile(`^<0x[0-9A-F]{2}>$`)

// Convert writes ck and tok as a GGUF file in llama.cpp's "llama" layout,
// with float32 weights.
//
// llama2.c applies RoPE to adjacent pairs (q[2i], q[2i+1]), exactly as
// GGUF's llama architecture expects, so WQ and WK are written unpermuted.
// The tokenizer's spaces become SentencePiece's "▁" and its "\n<s>\n" and
// "\n</s>\n" become "<s>" and "</s>", as in llama.cpp's vocabularies.
func Convert(w io.Writer, ck *Checkpoint, tok *Tokenizer) error {
	c := ck.Config
	if err := c.Validate(); err != nil {
		return err
	}
	if len(tok.Tokens) != c.VocabSize || len(tok.Scores) != c.VocabSize {
		return fmt.Errorf("llama2c: tokenizer has %d tokens and %d scores, checkpoint vocab is %d",
			len(tok.Tokens), len(tok.Scores), c.VocabSize)
	}
	if c.VocabSize <= eosID {
		return fmt.Errorf("llama2c: vocab of %d has no room for unk, bos and eos", c.VocabSize)
	}
	tensors, err := ggufTensors(ck)
	if err != nil {
		return err
	}
	tokens, types := ggufVocab(tok.Tokens)
	kv := []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.file_type", Value: uint32(0)}, // all F32
		{Key: "llama.context_length", Value: uint32(c.SeqLen)},
		{Key: "llama.embedding_length", Value: uint32(c.Dim)},
		{Key: "llama.block_count", Value: uint32(c.Layers)},
		{Key: "llama.feed_forward_length", Value: uint32(c.HiddenDim)},
		{Key: "llama.attention.head_count", Value: uint32(c.Heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(c.KVHeads)},
		{Key: "llama.rope.dimension_count", Value: uint32(c.HeadSize())},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: float32(RMSEpsilon)},
		{Key: "llama.rope.freq_base", Value: float32(RopeBase)},
		{Key: "tokenizer.ggml.model", Value: "llama"},
		{Key: "tokenizer.ggml.tokens", Value: tokens},
		{Key: "tokenizer.ggml.scores", Value: tok.Scores},
		{Key: "tokenizer.ggml.token_type", Value: types},
		{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(unkID)},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(bosID)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(eosID)},
		{Key: "tokenizer.ggml.add_bos_token", Value: true},
		{Key: "tokenizer.ggml.add_eos_token", Value: false},
	}
	if err := gguf.Write(w, kv, tensors); err != nil {
		return fmt.Errorf("llama2c: %w", err)
	}
	return nil
}

func ggufVocab(in []string) ([]string, []int32) {
	tokens := make([]string, len(in))
	types := make([]int32, len(in))
	for i, s := range in {
		switch {
		case i == unkID:
			tokens[i], types[i] = s, typeUnknown
		case i == bosID || i == eosID:
			tokens[i], types[i] = strings.TrimSpace(s), typeControl
		case byteToken.MatchString(s):
			tokens[i], types[i] = s, typeByte
		default:
			tokens[i], types[i] = strings.ReplaceAll(s, " ", "▁"), typeNormal
		}
	}
	return tokens, types
}

// ggufTensors lists the weights under llama.cpp's names. A (rows, cols)
// row-major matrix is a GGUF tensor of Dims {cols, rows}.
func ggufTensors(ck *Checkpoint) ([]gguf.WriteTensor, error) {
	c := ck.Config
	dim, hd, kv, vocab := c.Dim, c.HiddenDim, c.KVDim(), c.VocabSize
	var out []gguf.WriteTensor
	var err error
	add := func(name string, w []float32, rows, cols int) {
		if err != nil {
			return
		}
		if len(w) != rows*cols {
			err = fmt.Errorf("llama2c: %s has %d weights, want %d×%d", name, len(w), rows, cols)
			return
		}
		dims := []uint64{uint64(cols), uint64(rows)}
		if rows == 1 {
			dims = dims[:1]
		}
		out = append(out, gguf.WriteTensor{Name: name, Dims: dims, Type: ggml.F32, Data: f32Bytes(w)})
	}
	add("token_embd.weight", ck.TokenEmbedding, vocab, dim)
	add("output_norm.weight", ck.RMSFinal, 1, dim)
	if !c.SharedClassifier {
		add("output.weight", ck.Classifier, vocab, dim)
	}
	if len(ck.Layers) != c.Layers {
		return nil, fmt.Errorf("llama2c: %d layers, header says %d", len(ck.Layers), c.Layers)
	}
	for i, l := range ck.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		add(p+"attn_norm.weight", l.RMSAtt, 1, dim)
		add(p+"attn_q.weight", l.WQ, dim, dim)
		add(p+"attn_k.weight", l.WK, kv, dim)
		add(p+"attn_v.weight", l.WV, kv, dim)
		add(p+"attn_output.weight", l.WO, dim, dim)
		add(p+"ffn_norm.weight", l.RMSFFN, 1, dim)
		add(p+"ffn_gate.weight", l.W1, hd, dim)
		add(p+"ffn_down.weight", l.W2, dim, hd)
		add(p+"ffn_up.weight", l.W3, hd, dim)
	}
	return out, err
}

func f32Bytes(w []float32) []byte {
	b := make([]byte, 0, 4*len(w))
	for _, x := range w {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}
