// Package cpuref is the float64 CPU reference forward pass of LLaMA-family models (llama
// with its linear, YaRN and Llama 3 rope types and sliding windows; qwen2; qwen3; phi3;
// gemma2 with its embedding scale, GELU gating, post-norms, softcaps and sliding window on
// alternate layers), the judge of the GPU runtime. It shares no code with the GPU path: every weight is
// dequantised to float64 once, and every operation is a plain loop written for reading, in
// the order of llama2.c's run.c.
//
// The KV cache is kept under one of three policies, with the positions the GPU engine uses
// (keys are stored before RoPE and rotated at attention time):
//
//   - "full": every token keeps a row; key j has position j, a query the position of its row.
//   - "window" (StreamingLLM, N rows of which S sinks): the query at logical row r sees the
//     sinks [0, S) and rows [lo, r], lo = max(S, r-(N-S)+1); sink j has position j, key j >= lo
//     position S+(j-lo), the query position S+(r-lo).
//   - "freqkv": a freqkv.RefCache per layer (compressing keys and values of every layer before
//     a full cache takes a row); the key at cache row i has position i, and a token's query the
//     position of the row it occupies (it is appended first, then attends to rows 0..its row).
package cpuref

import (
	"errors"
	"fmt"

	"github.com/freqkv/freqkv/model"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
)

// Model is a model's hyper-parameters and weights in float64. Matrices are row-major with
// one row per output, as GGUF stores them: a (d, n) matrix maps n inputs to d outputs.
type Model struct {
	HP model.HParams

	TokenEmbedding []float64 // (vocab, dim)
	Layers         []Layer
	OutputNorm     []float64 // (dim,)
	Output         []float64 // (vocab, dim); the token embedding itself when tied
	RopeFactors    []float64 // (rope_dim/2,): rope_freqs.weight (Llama 3), nil where absent
	RopeLong       []float64 // (rope_dim/2,): phi3's longrope factors for long contexts, nil where absent
	RopeShort      []float64 // (rope_dim/2,): and for contexts within the original one
}

// Layer holds one transformer block's weights; q_dim = heads*head_dim, kv_dim = kv_heads*head_dim.
type Layer struct {
	AttnNorm   []float64 // (dim,)
	WQ         []float64 // (q_dim, dim)
	WK         []float64 // (kv_dim, dim)
	WV         []float64 // (kv_dim, dim)
	BQ, BK, BV []float64 // (q_dim,), (kv_dim,), (kv_dim,): qwen2's biases, nil where absent
	QNorm      []float64 // (head_dim,): qwen3's per-head query RMS norm, nil where absent
	KNorm      []float64 // (head_dim,): qwen3's per-head key RMS norm
	WO         []float64 // (dim, q_dim)
	PostAttn   []float64 // (dim,): gemma2's norm of the attention output, nil where absent
	FFNNorm    []float64 // (dim,)
	PostFFN    []float64 // (dim,): gemma2's norm of the feed-forward output, nil where absent
	WGate      []float64 // (ffn, dim)
	WUp        []float64 // (ffn, dim)
	WDown      []float64 // (dim, ffn)
}

// Load reads the hyper-parameters and all weights of f, dequantised to float64.
func Load(f *gguf.File) (*Model, error) {
	hp, err := model.HParamsFromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("cpuref: %w", err)
	}
	if err := model.CheckTensors(f, hp); err != nil {
		return nil, fmt.Errorf("cpuref: %w", err)
	}
	l := loader{f: f}
	m := &Model{
		HP:             hp,
		TokenEmbedding: l.tensor("token_embd.weight"),
		Layers:         make([]Layer, hp.Layers),
		OutputNorm:     l.tensor("output_norm.weight"),
	}
	m.Output = m.TokenEmbedding
	if hp.RopeFactors {
		m.RopeFactors = l.tensor("rope_freqs.weight")
	}
	if hp.LongRope {
		m.RopeLong, m.RopeShort = l.tensor("rope_factors_long.weight"), l.tensor("rope_factors_short.weight")
	}
	if !hp.TiedOutput {
		m.Output = l.tensor("output.weight")
	}
	for i := range m.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		m.Layers[i] = Layer{
			AttnNorm: l.tensor(p + "attn_norm.weight"),

			BQ:       l.optional(p + "attn_q.bias"),
			BK:       l.optional(p + "attn_k.bias"),
			BV:       l.optional(p + "attn_v.bias"),
			WO:       l.tensor(p + "attn_output.weight"),
			QNorm:    l.optional(p + "attn_q_norm.weight"),
			KNorm:    l.optional(p + "attn_k_norm.weight"),
			FFNNorm:  l.tensor(p + "ffn_norm.weight"),
			PostAttn: l.optional(p + "post_attention_norm.weight"),
			PostFFN:  l.optional(p + "post_ffw_norm.weight"),

			WDown: l.tensor(p + "ffn_down.weight"),
		}
	}
	for i := range m.Layers {
		l.projections(&m.Layers[i], fmt.Sprintf("blk.%d.", i), hp)
	}
	if l.err != nil {
		return nil, l.err
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// loader dequantises tensors, keeping the first error.
type loader struct {
	f   *gguf.File
	err error
}

func (l *loader) tensor(name string) []float64 {
	if l.err != nil {
		return nil
	}
	info, ok := l.f.Tensor(name)
	if !ok {
		l.err = fmt.Errorf("cpuref: tensor %q is missing", name)
		return nil
	}
	data, err := l.f.TensorData(info)
	if err != nil {
		l.err = fmt.Errorf("cpuref: %w", err)
		return nil
	}
	x, err := ggml.Dequantize(info.Type, data, int(info.Elements()))
	if err != nil {
		l.err = fmt.Errorf("cpuref: tensor %q: %w", name, err)
		return nil
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// optional loads a tensor that some files of an architecture have (llama.cpp loads attention
// biases wherever present); CheckTensors has required those the architecture always has.
func (l *loader) optional(name string) []float64 {
	if _, ok := l.f.Tensor(name); !ok {
		return nil
	}
	return l.tensor(name)
}

// check verifies that the weights have the sizes HP implies, for models built or edited by
// hand. Biases may be nil.
func (m *Model) check() error {
	hp := m.HP
	if err := hp.Validate(); err != nil {
		return fmt.Errorf("cpuref: %w", err)
	}
	if len(m.Layers) != hp.Layers {
		return fmt.Errorf("cpuref: %d layers of weights for %d layers", len(m.Layers), hp.Layers)
	}
	var errs []error
	want := func(name string, x []float64, n int, optional bool) {
		if len(x) != n && !(optional && x == nil) {
			errs = append(errs, fmt.Errorf("cpuref: %s has %d values, want %d", name, len(x), n))
		}
	}
	dim, q, kv, ffn := hp.Dim, hp.Heads*hp.HeadDim(), hp.KVDim(), hp.FFN
	want("token embedding", m.TokenEmbedding, hp.Vocab*dim, false)
	want("output norm", m.OutputNorm, dim, false)
	want("output", m.Output, hp.Vocab*dim, false)
	if hp.RopeFactors {
		want("rope factors", m.RopeFactors, hp.RopeDim/2, false)
	}
	if hp.LongRope {
		want("long rope factors", m.RopeLong, hp.RopeDim/2, false)
		want("short rope factors", m.RopeShort, hp.RopeDim/2, false)
	}
	for i, w := range m.Layers {
		p := fmt.Sprintf("layer %d ", i)
		want(p+"attn norm", w.AttnNorm, dim, false)
		want(p+"wq", w.WQ, q*dim, false)
		want(p+"wk", w.WK, kv*dim, false)
		want(p+"wv", w.WV, kv*dim, false)
		want(p+"bq", w.BQ, q, true)
		want(p+"bk", w.BK, kv, true)
		want(p+"bv", w.BV, kv, true)
		want(p+"wo", w.WO, dim*q, false)
		if hp.QKNorm {
			want(p+"q norm", w.QNorm, hp.HeadDim(), false)
			want(p+"k norm", w.KNorm, hp.HeadDim(), false)
		}
		want(p+"ffn norm", w.FFNNorm, dim, false)
		if hp.PostNorms {
			want(p+"post-attention norm", w.PostAttn, dim, false)
			want(p+"post-ffn norm", w.PostFFN, dim, false)
		}
		want(p+"w gate", w.WGate, ffn*dim, false)
		want(p+"w up", w.WUp, ffn*dim, false)
		want(p+"w down", w.WDown, dim*ffn, false)
	}
	return errors.Join(errs...)
}

// projections loads a layer's Q, K, V, gate and up matrices, cutting phi3's fused attn_qkv
// (rows of Q, then K, then V) and ffn_up (rows of the gate, then up) apart.
func (l *loader) projections(w *Layer, p string, hp model.HParams) {
	dim := hp.Dim
	if hp.FusedQKV {
		qkv := l.tensor(p + "attn_qkv.weight")
		q, kv := hp.Heads*hp.HeadDim()*dim, hp.KVDim()*dim
		if len(qkv) == q+2*kv {
			w.WQ, w.WK, w.WV = qkv[:q], qkv[q:q+kv], qkv[q+kv:]
		}
	} else {
		w.WQ, w.WK, w.WV = l.tensor(p+"attn_q.weight"), l.tensor(p+"attn_k.weight"), l.tensor(p+"attn_v.weight")
	}
	if hp.FusedGateUp {
		gu := l.tensor(p + "ffn_up.weight")
		if n := hp.FFN * dim; len(gu) == 2*n {
			w.WGate, w.WUp = gu[:n], gu[n:]
		}
	} else {
		w.WGate, w.WUp = l.tensor(p+"ffn_gate.weight"), l.tensor(p+"ffn_up.weight")
	}
}
