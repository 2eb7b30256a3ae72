// Package trainref is the float64 reference of fine-tuning: the training forward pass of a
// LLaMA-family model with its KV cache policy in the loop, and the exact gradient of its loss
// with respect to every trainable tensor. It is the judge of the GPU training step and shares
// no code with it: it runs on a cpuref.Model (weights in float64), differentiates by a small
// reverse-mode tape of plain loops, and is itself checked against central finite differences.
//
// # The loss
//
// For tokens t[0..n), the model reads t[0..n-1) and the loss is the mean over i of
// -log p(t[i+1] | t[0..i]), the n-1 next-token predictions, natural log.
//
// # The forward pass (per layer, for all tokens)
//
// rmsnorm, Q/K/V (plus their biases, and LoRA where given), the cache policy's view of each
// token, RoPE by the view's positions, attention (GQA), the output projection, the residual,
// the SwiGLU feed-forward, the residual; then the output norm and the classifier (the token
// embedding when tied). The policies (kvcache.Spec.Kind; Storage is ignored, the reference is
// float64 throughout):
//
//   - full: token i attends to tokens 0..i at positions 0..i (at most Size tokens).
//   - window (StreamingLLM, N rows of which S sinks): token r attends to the sinks
//     [0, min(S, r+1)) at their own positions and to rows [lo, r], lo = max(S, r-(N-S)+1), at
//     positions S+(j-lo); its query has position S+(r-lo) (r when r < S).
//   - freqkv: the grouped FreqKV forward. The first N tokens attend causally; whenever the
//     cache is full and a token needs a row, every layer's rows [S, S+L) of keys (before RoPE)
//     and of values are compressed to m rows, y = sqrt(m/L) * DCT-III_m(DCT-II_L(x)[:m]), and
//     the R recent rows move up; each following group of L-m tokens attends to [S sinks,
//     compressed rows, R recent rows] and causally to its own group. Row i of the cache has
//     position i; a query has the position of its own row. Earlier compressed rows are
//     compressed again, and the gradient flows back through every compression by its adjoint,
//     sqrt(m/L) * DCT-III_L(zero-pad_L(DCT-II_m(dy))).
//
// # Parameters
//
// Params.Tensors names what is trained, by GGUF tensor name; every tensor it holds gets a
// gradient of the same length, and nothing else does:
//
//   - LoRA: "blk.N.attn_q.weight.lora_a" (rank, in) and "blk.N.attn_q.weight.lora_b"
//     (out, rank), row-major, in pairs, on any matrix of a block (attn_q, attn_k, attn_v,
//     attn_output, ffn_gate, ffn_up, ffn_down): y = x·Wᵀ + (Alpha/rank)·x·Aᵀ·Bᵀ. This is
//     llama.cpp's adapter layout: A is a GGUF tensor of dims {in, rank}, B of dims {rank, out}.
//   - Full tensors replacing the model's own, trained whole: "token_embd.weight" (when the
//     output is tied to it, the classifier uses the same tensor and its gradient includes both
//     uses), "output_norm.weight", "blk.N.attn_norm.weight", "blk.N.ffn_norm.weight", and for
//     full fine-tuning any matrix or bias, e.g. "blk.N.ffn_up.weight", "output.weight".
//
// The API: LossAndGrads(model, params, tokens, spec) returns the loss and the gradients;
// Loss returns the loss alone (for finite differences); Logits returns every token's logits
// under the same forward (with params applied), which with empty params equal cpuref's.
// NewLoRA builds the paper's recipe (LoRA on q, k, v, o; embeddings and norms).
package trainref

import (
	"fmt"
	"math"
	"strings"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/cpuref"
)

// Params are the trainable tensors by GGUF name (see the package comment) and the LoRA alpha.
type Params struct {
	Alpha   float64
	Tensors map[string][]float64
}

// LossAndGrads runs the training forward of tokens under spec and returns the mean next-token
// NLL and its gradient with respect to every tensor of p.Tensors, by the same names.
func LossAndGrads(m *cpuref.Model, p Params, tokens []int, spec kvcache.Spec) (float64, map[string][]float64, error) {
	r, err := newRun(m, p, spec, true)
	if err != nil {
		return 0, nil, err
	}
	loss, err := r.loss(tokens)
	if err != nil {
		return 0, nil, err
	}
	r.t.backward()
	grads := make(map[string][]float64, len(r.trainable))
	for name, n := range r.trainable {
		grads[name] = n.g
	}
	return loss, grads, nil
}

// Loss is the loss of LossAndGrads alone.
func Loss(m *cpuref.Model, p Params, tokens []int, spec kvcache.Spec) (float64, error) {
	r, err := newRun(m, p, spec, false)
	if err != nil {
		return 0, err
	}
	return r.loss(tokens)
}

// Logits returns the logits (vocab,) of every token of tokens under the training forward.
func Logits(m *cpuref.Model, p Params, tokens []int, spec kvcache.Spec) ([][]float64, error) {
	r, err := newRun(m, p, spec, false)
	if err != nil {
		return nil, err
	}
	out, err := r.forward(tokens)
	if err != nil {
		return nil, err
	}
	logits := make([][]float64, len(out))
	for i, n := range out {
		logits[i] = n.v
	}
	return logits, nil
}

// run is one forward (and backward) pass: the model's tensors as nodes, trainable ones with
// gradients, and the tape.
type run struct {
	m         *cpuref.Model
	spec      kvcache.Spec
	alpha     float64
	t         *tape
	tensors   map[string]*node       // every tensor by GGUF name
	trainable map[string]*node       // those of Params, with gradients
	loras     map[string]*loraUpdate // by the name of the matrix they update
}

func newRun(m *cpuref.Model, p Params, spec kvcache.Spec, grads bool) (*run, error) {
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	r := &run{m: m, spec: spec, alpha: p.Alpha, t: &tape{}, tensors: baseTensors(m),
		trainable: map[string]*node{}, loras: map[string]*loraUpdate{}}
	if m.HP.TiedOutput {
		if _, ok := p.Tensors["output.weight"]; ok {
			return nil, fmt.Errorf("trainref: output.weight is given but the model's output is tied to token_embd.weight; train token_embd.weight")
		}
	}
	for name, v := range p.Tensors {
		n := &node{v: v}
		if grads {
			n.g = make([]float64, len(v))
		}
		r.trainable[name] = n
		switch {
		case strings.HasSuffix(name, ".lora_a"), strings.HasSuffix(name, ".lora_b"):
			// paired below
		default:
			base, ok := r.tensors[name]
			if !ok {
				return nil, fmt.Errorf("trainref: tensor %q is not one of the model's", name)
			}
			if len(v) != len(base.v) {
				return nil, fmt.Errorf("trainref: tensor %q has %d values, the model's has %d", name, len(v), len(base.v))
			}
			r.tensors[name] = n
		}
	}
	if m.HP.TiedOutput {
		r.tensors["output.weight"] = r.tensors["token_embd.weight"]
	}
	for name, a := range r.trainable {
		target, ok := strings.CutSuffix(name, ".lora_a")
		if !ok {
			if target, ok = strings.CutSuffix(name, ".lora_b"); ok && r.trainable[target+".lora_a"] == nil {
				return nil, fmt.Errorf("trainref: %s has no %s.lora_a", name, target)
			}
			continue
		}
		b := r.trainable[target+".lora_b"]
		if b == nil {
			return nil, fmt.Errorf("trainref: %s has no %s.lora_b", name, target)
		}
		w, ok := r.tensors[target]
		if !ok || !strings.HasPrefix(target, "blk.") || !strings.HasSuffix(target, ".weight") || strings.HasSuffix(target, "_norm.weight") {
			return nil, fmt.Errorf("trainref: %s adapts %q, which is not a matrix of a block", name, target)
		}
		in := inputs(m, target)
		out := len(w.v) / in
		if len(a.v) == 0 || len(a.v)%in != 0 {
			return nil, fmt.Errorf("trainref: %s has %d values, not a (rank, %d) matrix", name, len(a.v), in)
		}
		rank := len(a.v) / in
		if len(b.v) != out*rank {
			return nil, fmt.Errorf("trainref: %s.lora_b has %d values, want (%d, %d) for rank %d", target, len(b.v), out, rank, rank)
		}
		if !(p.Alpha > 0) || math.IsInf(p.Alpha, 0) {
			return nil, fmt.Errorf("trainref: LoRA alpha %v is not a positive number", p.Alpha)
		}
		r.loras[target] = &loraUpdate{a: a, b: b, rank: rank, scale: p.Alpha / float64(rank)}
	}
	return r, nil
}

func checkSpec(s kvcache.Spec) error {
	if s.Storage == 0 {
		s.Storage = engine.F32 // the reference has no storage type; validate the rest
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("trainref: %w", err)
	}
	if err := s.CheckMethodOnly(); err != nil {
		return fmt.Errorf("trainref: %w", err)
	}
	return nil
}

// inputs is the input width of a block matrix: the FFN width for ffn_down, heads*head_dim
// for attn_output, the embedding width otherwise.
func inputs(m *cpuref.Model, name string) int {
	switch {
	case strings.HasSuffix(name, ".ffn_down.weight"):
		return m.HP.FFN
	case strings.HasSuffix(name, ".attn_output.weight"):
		return m.HP.Heads * m.HP.HeadDim()
	}
	return m.HP.Dim
}

// baseTensors wraps the model's weights as frozen nodes, by GGUF name.
func baseTensors(m *cpuref.Model) map[string]*node {
	t := map[string]*node{
		"token_embd.weight":  {v: m.TokenEmbedding},
		"output_norm.weight": {v: m.OutputNorm},
	}
	if !m.HP.TiedOutput {
		t["output.weight"] = &node{v: m.Output}
	}
	for i, l := range m.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		for name, v := range map[string][]float64{
			"attn_norm.weight": l.AttnNorm, "attn_q.weight": l.WQ, "attn_k.weight": l.WK, "attn_v.weight": l.WV,
			"attn_q.bias": l.BQ, "attn_k.bias": l.BK, "attn_v.bias": l.BV, "attn_output.weight": l.WO,
			"ffn_norm.weight": l.FFNNorm, "ffn_gate.weight": l.WGate, "ffn_up.weight": l.WUp, "ffn_down.weight": l.WDown,
		} {
			if v != nil {
				t[p+name] = &node{v: v}
			}
		}
	}
	return t
}

// loss runs the forward over tokens[:n-1] and records the mean NLL of tokens[1:].
func (r *run) loss(tokens []int) (float64, error) {
	if len(tokens) < 2 {
		return 0, fmt.Errorf("trainref: %d tokens give no prediction to score; need at least 2", len(tokens))
	}
	if err := checkTokens(tokens, r.m.HP.Vocab); err != nil {
		return 0, err
	}
	logits, err := r.forward(tokens[:len(tokens)-1])
	if err != nil {
		return 0, err
	}
	w := 1 / float64(len(logits))
	var sum float64
	for i, l := range logits {
		sum += r.t.nll(l, tokens[i+1], w)
	}
	return sum * w, nil
}

// linear applies the named matrix (with its bias and LoRA, where present) to x.
func (r *run) linear(name string, x *node) *node {
	bias := r.tensors[strings.TrimSuffix(name, ".weight")+".bias"]
	return r.t.linear(r.tensors[name], x, bias, r.loras[name])
}

// forward returns the logits node of every token.
func (r *run) forward(tokens []int) ([]*node, error) {
	hp := r.m.HP
	if err := checkTokens(tokens, hp.Vocab); err != nil {
		return nil, err
	}
	if r.spec.Kind == kvcache.Full && len(tokens) > r.spec.Size {
		return nil, fmt.Errorf("trainref: %d tokens do not fit a full cache of %d", len(tokens), r.spec.Size)
	}
	rp := ropeParams{headDim: hp.HeadDim(), dim: hp.RopeDim, base: hp.RopeBase, scale: hp.RopeScale, neox: hp.RopeNeoX}
	x := make([]*node, len(tokens))
	for i, tok := range tokens {
		x[i] = r.t.row(r.tensors["token_embd.weight"], tok, hp.Dim)
	}
	for l := range hp.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		q := make([]*node, len(x))
		k := make([]*node, len(x))
		v := make([]*node, len(x))
		for i := range x {
			xb := r.t.rmsnorm(x[i], r.tensors[p+"attn_norm.weight"], hp.RMSEps)
			q[i] = r.linear(p+"attn_q.weight", xb)
			k[i] = r.linear(p+"attn_k.weight", xb)
			v[i] = r.linear(p+"attn_v.weight", xb)
		}
		views, err := r.views(k, v)
		if err != nil {
			return nil, err
		}
		rotated := map[rotKey]*node{} // each key row rotated once per position
		for i := range x {
			vw := views[i]
			keys := make([]*node, len(vw.keys))
			for j, key := range vw.keys {
				rk := rotKey{key, vw.keyPos[j]}
				if rotated[rk] == nil {
					rotated[rk] = r.t.rope(key, vw.keyPos[j], rp)
				}
				keys[j] = rotated[rk]
			}
			att := r.t.attention(r.t.rope(q[i], vw.queryPos, rp), keys, vw.values, hp.Heads, hp.KVHeads, hp.HeadDim())
			x[i] = r.t.add(x[i], r.linear(p+"attn_output.weight", att))
		}
		for i := range x {
			xb := r.t.rmsnorm(x[i], r.tensors[p+"ffn_norm.weight"], hp.RMSEps)
			h := r.t.swiglu(r.linear(p+"ffn_gate.weight", xb), r.linear(p+"ffn_up.weight", xb))
			x[i] = r.t.add(x[i], r.linear(p+"ffn_down.weight", h))
		}
	}
	out := make([]*node, len(x))
	for i := range x {
		out[i] = r.t.linear(r.tensors["output.weight"], r.t.rmsnorm(x[i], r.tensors["output_norm.weight"], hp.RMSEps), nil, nil)
	}
	return out, nil
}

func checkTokens(tokens []int, vocab int) error {
	for i, t := range tokens {
		if t < 0 || t >= vocab {
			return fmt.Errorf("trainref: token %d (at %d) outside the vocabulary [0, %d)", t, i, vocab)
		}
	}
	return nil
}

type rotKey struct {
	n   *node
	pos int
}

// view is what one token attends to: key rows (before RoPE) with their positions, value rows,
// and the query's position.
type view struct {
	keys, values []*node
	keyPos       []int
	queryPos     int
}

func positions(first, n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = first + i
	}
	return p
}

// views applies the cache policy to one layer's keys and values of the whole sequence.
func (r *run) views(k, v []*node) ([]view, error) {
	out := make([]view, len(k))
	switch r.spec.Kind {
	case kvcache.Full:
		for i := range k {
			out[i] = view{keys: k[:i+1], values: v[:i+1], keyPos: positions(0, i+1), queryPos: i}
		}
	case kvcache.Window:
		n, s := r.spec.Size, r.spec.Sink
		for i := range k {
			sinks := min(s, i+1)
			vw := view{keys: append([]*node(nil), k[:sinks]...), values: append([]*node(nil), v[:sinks]...),
				keyPos: positions(0, sinks), queryPos: i}
			if i >= s {
				lo := max(s, i-(n-s)+1)
				vw.keys = append(vw.keys, k[lo:i+1]...)
				vw.values = append(vw.values, v[lo:i+1]...)
				vw.keyPos = append(vw.keyPos, positions(s, i+1-lo)...)
				vw.queryPos = s + (i - lo)
			}
			out[i] = vw
		}
	case kvcache.FreqKV:
		cfg := r.spec.FreqKV()
		steps, err := cfg.Plan(0, len(k))
		if err != nil {
			return nil, fmt.Errorf("trainref: %w", err)
		}
		var keys, values []*node // the cache's rows
		next := 0
		for _, st := range steps {
			if st.Kind == freqkv.StepCompress {
				lo, hi := cfg.Sink, cfg.Sink+cfg.Span()
				// New slices: views taken before keep the rows they saw.
				keys = append(append(append([]*node(nil), keys[:lo]...), r.t.compress(keys[lo:hi], cfg.Kept())...), keys[hi:]...)
				values = append(append(append([]*node(nil), values[:lo]...), r.t.compress(values[lo:hi], cfg.Kept())...), values[hi:]...)
				continue
			}
			for range st.Rows {
				keys = append(keys, k[next])
				values = append(values, v[next])
				row := len(keys) - 1
				out[next] = view{keys: keys[: row+1 : row+1], values: values[: row+1 : row+1], keyPos: positions(0, row+1), queryPos: row}
				next++
			}
		}
	}
	return out, nil
}

// LoRAOptions describe what NewLoRA trains.
type LoRAOptions struct {
	Rank  int
	Alpha float64
	// Matrices are the block matrices given LoRA pairs; nil means the paper's
	// attn_q, attn_k, attn_v and attn_output.
	Matrices []string
	// Embedding and Norms add token_embd.weight and every norm weight as full tensors.
	Embedding, Norms bool
	// BScale draws B uniform in ±BScale; 0, the training start, makes B zero (so the adapter
	// starts as the identity).
	BScale float64
	Seed   uint64
}

// DefaultLoRAMatrices are the matrices the paper adapts.
var DefaultLoRAMatrices = []string{"attn_q", "attn_k", "attn_v", "attn_output"}

// NewLoRA returns trainable parameters for m: A uniform in ±1/sqrt(in) (the bound of PyTorch's
// kaiming_uniform(a=sqrt(5)) that PEFT uses), B as o.BScale says, copies of the embedding and
// norms where asked.
func NewLoRA(m *cpuref.Model, o LoRAOptions) (Params, error) {
	if o.Rank < 1 {
		return Params{}, fmt.Errorf("trainref: LoRA rank %d must be at least 1", o.Rank)
	}
	matrices := o.Matrices
	if matrices == nil {
		matrices = DefaultLoRAMatrices
	}
	rng := newRand(o.Seed)
	p := Params{Alpha: o.Alpha, Tensors: map[string][]float64{}}
	base := baseTensors(m)
	for l := range m.HP.Layers {
		for _, mat := range matrices {
			name := fmt.Sprintf("blk.%d.%s.weight", l, mat)
			w, ok := base[name]
			if !ok {
				return Params{}, fmt.Errorf("trainref: the model has no %s to adapt", name)
			}
			in := inputs(m, name)
			out := len(w.v) / in
			p.Tensors[name+".lora_a"] = rng.uniform(o.Rank*in, 1/math.Sqrt(float64(in)))
			p.Tensors[name+".lora_b"] = rng.uniform(out*o.Rank, o.BScale)
		}
		if o.Norms {
			for _, n := range []string{"attn_norm", "ffn_norm"} {
				name := fmt.Sprintf("blk.%d.%s.weight", l, n)
				p.Tensors[name] = append([]float64(nil), base[name].v...)
			}
		}
	}
	if o.Norms {
		p.Tensors["output_norm.weight"] = append([]float64(nil), m.OutputNorm...)
	}
	if o.Embedding {
		p.Tensors["token_embd.weight"] = append([]float64(nil), m.TokenEmbedding...)
	}
	return p, nil
}

// rand is a small deterministic generator (SplitMix64), so parameters depend on the seed alone.
type rand struct{ s uint64 }

func newRand(seed uint64) *rand { return &rand{s: seed} }

func (r *rand) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// uniform returns n values uniform in [-bound, bound).
func (r *rand) uniform(n int, bound float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = bound * (2*float64(r.next()>>11)/(1<<53) - 1)
	}
	return out
}
