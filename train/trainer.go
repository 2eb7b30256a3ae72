// Package train fine-tunes a LLaMA-family model on the GPU with its KV-cache
// policy in the loop (FreqKV, a StreamingLLM window, or full attention): the
// grouped forward of docs/freqkv.md over each training sequence, and a backward
// pass that runs the groups in reverse and carries each layer's cache
// gradient back through every compression with its adjoint. LoRA adapters on
// q, k, v, o plus (optionally) embeddings and norms are trained with AdamW;
// base weights stay frozen in their file types.
//
// Memory: besides the weights and the optimiser state, a step keeps each
// layer's input rows (the residual stream, T x dim per layer, the
// checkpoints), the gradient of the final residual, the cache of every layer
// and, for FreqKV, its state at the start of every group (what the backward
// needs to recompute a group); a layer's other activations are recomputed in
// the backward and live in one set of buffers (see Trainer.Bytes).
package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/shaders"
)

// Config is what a Trainer trains and how.
type Config struct {
	// Cache is the policy in the training forward (storage f32; see Plan).
	Cache  kvcache.Spec
	SeqLen int // T: tokens per training sequence (targets are the next tokens)
	// Rank and Alpha of the LoRA adapters on q, k, v and o (scale Alpha/Rank).
	// Rank 0 trains no adapters.
	Rank  int
	Alpha float64
	// Embeddings and Norms make the token embedding (and a tied classifier)
	// and every RMSNorm weight trainable.
	Embeddings, Norms bool
	// All trains every matrix whole (q, k, v, o, gate, up, down, the
	// embedding and an untied classifier) instead of LoRA adapters; the
	// model's matrices must be f32 or f16. Rank must be 0.
	All bool
	// Seed draws the LoRA A matrices.
	Seed uint64
	// ActivationBytes bounds the device memory of kept activations: the
	// layers whose activations over the whole sequence fit it (from the
	// first layer up) keep them from the forward for the backward; the
	// others are recomputed from their checkpointed input (one more
	// forward of those layers). 0 means DefaultActivationBytes; a negative
	// value keeps none (checkpointing only, the least memory).
	ActivationBytes int64
}

// DefaultActivationBytes is Config.ActivationBytes when not set: small
// models keep every layer's activations, large ones checkpoint.
const DefaultActivationBytes = 512 << 20

type loraPair struct{ A, B *Param }

// Trainer holds a model's trainable parameters, optimiser state and the
// buffers of one training step on the device.
type Trainer struct {
	cfg   Config
	dev   *engine.Device
	ops   *shaders.Ops
	h     model.HParams
	base  llama.Tensors
	sched Schedule
	segT  int // most tokens of one segment

	Params   []*Param
	lora     [][numTargets]loraPair
	full     [][numMats]*Param // All: every block matrix
	outFull  *Param            // All, untied classifier
	embd     *Param
	attnNorm []*Param
	ffnNorm  []*Param
	outNorm  *Param
	scale    float32 // LoRA alpha/rank

	// Profile, when set, collects GPU time per kernel of each sequence's pass.
	Profile *engine.Profile

	b      buffers
	kept   int   // layers whose activations are kept (0..kept-1), not recomputed
	saved  int64 // bytes of the kept activations
	counts Counts
	unique []int // per segment: distinct ids of the current sequence (embedding gradient)
	steps  int   // optimiser steps taken
	before int64 // device bytes allocated before the trainer
	bytes  int64
}

// buffers are the step's device tensors (see the package comment).
type buffers struct {
	ids     *engine.Tensor   // u32 [T]
	targets *engine.Tensor   // u32 [T]
	ckpt    []*engine.Tensor // layers+1 of [T, dim]: input of each layer, final residual
	dxf     *engine.Tensor   // [T, dim]: gradient of the final residual
	posQ    []*engine.Tensor // per segment: u32 [tokens], the queries' positions
	posRow  *engine.Tensor   // u32 [Cap]: 0, 1, 2, ...
	posSink *engine.Tensor   // Window: u32 [T], the position of each query against the sinks
	dqs     *engine.Tensor   // Window: [T, qdim] the gradient of the sink queries
	dkv2    *engine.Tensor   // Window: [2T, kvd], dk rows then dv rows
	index   []*engine.Tensor // per segment: embedding-gradient index

	xin, xout, dx, dxb  *engine.Tensor // [segT, dim]
	q, datt, dqrot, dq  *engine.Tensor // [segT, qdim]
	k, v, dk, dv        *engine.Tensor // [segT, kvd]
	du                  *engine.Tensor // [segT, rank]
	dgate, dup, dhidden *engine.Tensor // [segT, ffn]
	inv                 *engine.Tensor
	shared              acts     // what a recomputed layer's backward reads ([segT] rows)
	kept                [][]acts // per segment, per kept layer: that layer's activations

	kc, vc, dkc, dvc           []*engine.Tensor // per layer [Cap, kvd]: cache (keys before RoPE) and its gradient
	kv                         *engine.Tensor   // the caches' buffer: kc[l], vc[l] are its matrices 2l, 2l+1
	kvStride                   int              // rows from one matrix of kv to the next
	snapK, snapV               []*engine.Tensor // FreqKV: per recomputed layer, [segments*P, kvd] cache states
	dkrot, dkun                *engine.Tensor   // [Cap, kvd]
	adj                        *engine.Tensor   // [Cap, kvd] adjoint output
	adjWork, adjWork2, dctWork *engine.Tensor   // the adjoint's DCT chain
	adjMat                     *engine.Tensor   // or its matrix [L, m] (denseAdjointMax)
	compScratch                *engine.Tensor

	headRows           int
	hx, hn, dh, logits *engine.Tensor // head chunk: [headRows, dim] x3, [headRows, vocab]
	nll                *engine.Tensor // [T]
	dwDummy            *engine.Tensor // dw sink for frozen norms [dim]
	partials, clip     *engine.Tensor
	slots              int
}

// acts are the activations of one layer over one segment that its backward
// reads: the shared set, which the recompute fills again, or a kept set.
type acts struct {
	xmid, xb, xb2    *engine.Tensor             // [tokens, dim]: residual after attention, the norms' outputs
	qrot, att, qsink *engine.Tensor             // [tokens, qdim]; qsink: Window, queries rotated for the sinks
	u                [numTargets]*engine.Tensor // [tokens, rank]: x·Aᵀ of each LoRA pair
	gate, up, hidden *engine.Tensor             // [tokens, ffn]
	stats            *engine.Tensor             // [tokens, 2·heads]
	krot             *engine.Tensor             // [rows+tokens, kvd]: the visible keys, rotated
	vc               *engine.Tensor             // the visible values (a kept FreqKV state), nil: the layer's cache
}

func (a *acts) tensors() []*engine.Tensor {
	return append([]*engine.Tensor{a.xmid, a.xb, a.xb2, a.qrot, a.att, a.qsink, a.gate, a.up, a.hidden, a.stats, a.krot, a.vc}, a.u[:]...)
}

// New prepares training of m (loaded from f) under cfg.
func New(m *llama.Model, f *gguf.File, cfg Config) (*Trainer, error) {
	h := m.H
	if err := m.PlainForward(); err != nil {
		return nil, fmt.Errorf("training this model: %w", err)
	}
	if cfg.SeqLen < 2 {
		return nil, fmt.Errorf("training sequences need at least 2 tokens, got %d", cfg.SeqLen)
	}
	if cfg.Rank < 0 || (cfg.Rank > 0 && !(cfg.Alpha > 0)) {
		return nil, fmt.Errorf("LoRA rank %d and alpha %g: want rank >= 0 and alpha > 0", cfg.Rank, cfg.Alpha)
	}
	if cfg.All && cfg.Rank != 0 {
		return nil, fmt.Errorf("training every matrix whole leaves nothing for LoRA adapters: use rank 0")
	}
	if cfg.All {
		cfg.Embeddings = true
	}
	if cfg.Rank == 0 && !cfg.Embeddings && !cfg.Norms {
		return nil, fmt.Errorf("nothing to train: no LoRA rank, embeddings or norms")
	}
	sched, err := Plan(cfg.Cache, cfg.SeqLen)
	if err != nil {
		return nil, err
	}
	dev := m.Device()
	t := &Trainer{cfg: cfg, dev: dev, ops: m.Ops(), h: h, base: m.Tensors(), sched: sched, before: dev.AllocatedBytes()}
	for _, s := range sched.Segments {
		t.segT = max(t.segT, s.Tokens)
	}
	if cfg.Rank > 0 {
		t.scale = float32(cfg.Alpha / float64(cfg.Rank))
	}
	if err := t.initParams(f); err != nil {
		t.Release()
		return nil, err
	}
	if err := t.alloc(); err != nil {
		t.Release()
		return nil, err
	}
	t.bytes = dev.AllocatedBytes() - t.before
	return t, nil
}

func (t *Trainer) initParams(f *gguf.File) error {
	h, dev := t.h, t.dev
	hd := h.HeadDim()
	rng := rand.New(rand.NewPCG(t.cfg.Seed, 0x6c6f7261))
	add := func(p *Param, err error) (*Param, error) {
		if err == nil {
			t.Params = append(t.Params, p)
		}
		return p, err
	}
	fromFile := func(name string, decay bool) (*Param, error) {
		v, dims, err := fileValues(f, name)
		if err != nil {
			return nil, err
		}
		rows, cols := 1, int(dims[0])
		if len(dims) == 2 {
			rows = int(dims[1])
		}
		return add(newParam(dev, name, rows, cols, v, decay))
	}
	var err error
	if t.cfg.Embeddings {
		if t.embd, err = fromFile("token_embd.weight", false); err != nil {
			return err
		}
	}
	t.lora = make([][numTargets]loraPair, h.Layers)
	t.full = make([][numMats]*Param, h.Layers)
	if t.cfg.All {
		for _, ti := range f.Tensors {
			if len(ti.Dims) == 2 && ti.Type != ggml.F32 && ti.Type != ggml.F16 {
				return fmt.Errorf("training every matrix needs an f32 or f16 model; %s is %s (train LoRA adapters instead)", ti.Name, ti.Type)
			}
		}
		if !h.TiedOutput {
			if t.outFull, err = fromFile("output.weight", true); err != nil {
				return err
			}
		}
	}
	t.attnNorm = make([]*Param, h.Layers)
	t.ffnNorm = make([]*Param, h.Layers)
	outs := [numTargets]int{h.Heads * hd, h.KVHeads * hd, h.KVHeads * hd, h.Dim}
	ins := [numTargets]int{h.Dim, h.Dim, h.Dim, h.Heads * hd}
	for l := 0; l < h.Layers; l++ {
		pre := fmt.Sprintf("blk.%d.", l)
		if t.cfg.Norms {
			if t.attnNorm[l], err = fromFile(pre+"attn_norm.weight", false); err != nil {
				return err
			}
		}
		if t.cfg.Rank > 0 {
			for i, name := range targetNames {
				r := t.cfg.Rank
				w := pre + name + ".weight"
				a, err := add(newParam(dev, w+".lora_a", r, ins[i], loraInit(rng, r, ins[i]), true))
				if err != nil {
					return err
				}
				b, err := add(newParam(dev, w+".lora_b", outs[i], r, make([]float32, outs[i]*r), true))
				if err != nil {
					return err
				}
				t.lora[l][i] = loraPair{A: a, B: b}
			}
		}
		if t.cfg.All {
			for i, name := range matNames {
				if t.full[l][i], err = fromFile(pre+name+".weight", true); err != nil {
					return err
				}
			}
		}
		if t.cfg.Norms {
			if t.ffnNorm[l], err = fromFile(pre+"ffn_norm.weight", false); err != nil {
				return err
			}
		}
	}
	if t.cfg.Norms {
		if t.outNorm, err = fromFile("output_norm.weight", false); err != nil {
			return err
		}
	}
	return nil
}

func (t *Trainer) alloc() error {
	h, dev, b := t.h, t.dev, &t.b
	hd := h.HeadDim()
	qdim, kvd := h.Heads*hd, h.KVHeads*hd
	T, S := t.cfg.SeqLen, t.segT
	capRows := t.sched.Cap
	var err error
	ten := func(name string, dt engine.DType, rows, cols int) *engine.Tensor {
		if err != nil {
			return nil
		}
		var x *engine.Tensor
		x, err = dev.NewTensor("train "+name, dt, max(rows, 1), max(cols, 1))
		return x
	}
	b.ids = ten("ids", engine.U32, 1, T)
	b.targets = ten("targets", engine.U32, 1, T)
	for l := 0; l <= h.Layers; l++ {
		b.ckpt = append(b.ckpt, ten(fmt.Sprintf("checkpoint %d", l), engine.F32, T, h.Dim))
	}
	b.dxf = ten("dxf", engine.F32, T, h.Dim)
	for _, s := range t.sched.Segments {
		pos := make([]uint32, s.Tokens)
		for i := range pos {
			pos[i] = uint32(s.Rows + i)
		}
		p := ten("query positions", engine.U32, 1, s.Tokens)
		if err == nil {
			err = p.Upload(u32le(pos))
		}
		b.posQ = append(b.posQ, p)
		b.index = append(b.index, ten("embedding index", engine.U32, 1, 3*s.Tokens+1))
	}
	rows := make([]uint32, capRows)
	for i := range rows {
		rows[i] = uint32(i)
	}
	b.posRow = ten("row positions", engine.U32, 1, capRows)
	if err == nil {
		err = b.posRow.Upload(u32le(rows))
	}
	if t.sched.Window > 0 {
		sp := make([]uint32, T)
		for i := range sp {
			sp[i] = uint32(shaders.WindowSinkPosition(i, t.sched.Sink, t.sched.Window))
		}
		b.posSink = ten("sink positions", engine.U32, 1, T)
		if err == nil {
			err = b.posSink.Upload(u32le(sp))
		}
		b.dqs = ten("sink query grads", engine.F32, T, qdim)
		b.dkv2 = ten("key and value grads", engine.F32, 2*T, h.KVDim())
	}
	for _, p := range []**engine.Tensor{&b.xin, &b.xout, &b.dx, &b.dxb} {
		*p = ten("activation", engine.F32, S, h.Dim)
	}
	for _, p := range []**engine.Tensor{&b.q, &b.datt, &b.dqrot, &b.dq} {
		*p = ten("activation", engine.F32, S, qdim)
	}
	for _, p := range []**engine.Tensor{&b.k, &b.v, &b.dk, &b.dv} {
		*p = ten("activation", engine.F32, S, kvd)
	}
	for _, p := range []**engine.Tensor{&b.dgate, &b.dup, &b.dhidden} {
		*p = ten("activation", engine.F32, S, h.FFN)
	}
	if t.cfg.Rank > 0 {
		b.du = ten("lora du", engine.F32, S, t.cfg.Rank)
	}
	if err == nil {
		err = t.allocActs(nil, -1, S, capRows, &b.shared)
	}
	if err == nil {
		err = t.allocKept()
	}
	b.inv = ten("norm scratch", engine.F32, 1, T)
	// every layer's K and V cache in one buffer, so one call compresses them
	// all; each matrix starts at a binding-aligned offset
	b.kvStride = capRows
	for (b.kvStride*kvd*4)%256 != 0 {
		b.kvStride++
	}
	b.kv = ten("kv caches", engine.F32, 2*h.Layers*b.kvStride, kvd)
	for l := 0; l < h.Layers && err == nil; l++ {
		view := func(i int) *engine.Tensor {
			return &engine.Tensor{Buf: b.kv.Buf, Offset: b.kv.Offset + uint64(i*b.kvStride*kvd*4), DType: engine.F32, Rows: capRows, Cols: kvd}
		}
		b.kc = append(b.kc, view(2*l))
		b.vc = append(b.vc, view(2*l+1))
	}
	for l := 0; l < h.Layers; l++ {
		b.dkc = append(b.dkc, ten("k cache grad", engine.F32, capRows, kvd))
		b.dvc = append(b.dvc, ten("v cache grad", engine.F32, capRows, kvd))
	}
	b.dkrot = ten("rotated key grads", engine.F32, capRows, kvd)
	b.dkun = ten("key grads", engine.F32, capRows, kvd)
	if t.cfg.Cache.Kind == kvcache.FreqKV && len(t.sched.Segments) > 1 {
		c := t.cfg.Cache.FreqKV()
		p := c.RowsAfterCompression()
		n := len(t.sched.Segments) * p
		for l := 0; l < h.Layers; l++ {
			if l < t.kept {
				b.snapK, b.snapV = append(b.snapK, nil), append(b.snapV, nil) // kept layers restore nothing
				continue
			}
			b.snapK = append(b.snapK, ten("k states", engine.F32, n, kvd))
			b.snapV = append(b.snapV, ten("v states", engine.F32, n, kvd))
		}
		b.adj = ten("adjoint", engine.F32, capRows, kvd)
		if L, m := c.Span(), c.Kept(); L*m <= denseAdjointMax {
			b.adjMat = ten("compression adjoint", engine.F32, L, m)
			if err == nil {
				var table []float32
				if table, err = shaders.SpreadTable(L, m); err == nil {
					err = b.adjMat.UploadF32(table)
				}
			}
		} else {
			b.adjWork = ten("adjoint work", engine.F32, L, kvd)
			b.adjWork2 = ten("adjoint work", engine.F32, L, kvd)
			b.dctWork = ten("dct scratch", engine.F32, 1, shaders.CompressAdjointScratch(L, m, kvd))
		}
		cp := t.compressParams()
		b.compScratch = ten("compression scratch", engine.F32, 1, shaders.CompressScratch(cp, 0))
		if err == nil {
			err = t.ops.PrepareCompress(b.kv, b.compScratch, cp)
		}
	}
	// the classifier runs in chunks of rows whose logits fit one binding
	// (a multiple of 64 rows, so every chunk's targets start at a 256-byte offset)
	b.headRows = int(dev.MaxBinding() / uint64(4*h.Vocab))
	if b.headRows < 64 {
		return fmt.Errorf("a vocabulary of %d is too large: 64 rows of logits exceed one storage binding", h.Vocab)
	}
	b.headRows = min(T, b.headRows/64*64)
	b.hx = ten("head x", engine.F32, b.headRows, h.Dim)
	b.hn = ten("head normed", engine.F32, b.headRows, h.Dim)
	b.dh = ten("head grad", engine.F32, b.headRows, h.Dim)
	b.logits = ten("logits", engine.F32, b.headRows, h.Vocab)
	b.nll = ten("nll", engine.F32, 1, T)
	b.dwDummy = ten("frozen norm grad", engine.F32, 1, h.Dim)
	slots := 0
	for _, p := range t.Params {
		slots += shaders.SumSquaresSlots(p.Elements())
	}
	b.slots = slots
	b.partials = ten("grad norm partials", engine.F32, 1, slots)
	b.clip = ten("grad norm", engine.F32, 1, 2)
	return err
}

// allocActs allocates a set of activations for n tokens behind rows cache
// rows; a kept set (seg >= 0) allocates only what its backward reads and
// takes the rest from the shared set.
func (t *Trainer) allocActs(shared *acts, seg, n, rows int, a *acts) error {
	h, dev := t.h, t.dev
	qdim, kvd := h.Heads*h.HeadDim(), h.KVDim()
	name := "activation"
	if shared != nil {
		*a = *shared
		name = fmt.Sprintf("kept activation (segment %d)", seg)
	}
	var err error
	ten := func(p **engine.Tensor, rows, cols int) {
		if err == nil {
			*p, err = dev.NewTensor("train "+name, engine.F32, rows, cols)
		}
	}
	for _, p := range []**engine.Tensor{&a.xmid, &a.xb} {
		ten(p, n, h.Dim)
	}
	ten(&a.qrot, n, qdim)
	ten(&a.att, n, qdim)
	if t.sched.Window > 0 {
		ten(&a.qsink, n, qdim)
	}
	if t.cfg.Rank > 0 {
		for i := range a.u {
			ten(&a.u[i], n, t.cfg.Rank)
		}
	}
	ten(&a.gate, n, h.FFN)
	ten(&a.up, n, h.FFN)
	ten(&a.stats, n, 2*h.Heads)
	ten(&a.krot, rows+n, kvd)
	// the FFN's input and hidden rows are read back only by the weight
	// gradients of matrices trained whole
	if shared == nil || t.cfg.All {
		ten(&a.xb2, n, h.Dim)
		ten(&a.hidden, n, h.FFN)
	}
	// a FreqKV layer's cache changes after the segment: keep its values
	if shared != nil && len(t.sched.Segments) > 1 {
		ten(&a.vc, rows+n, kvd)
	}
	return err
}

// keptBytes is the device memory of one layer's kept activations over the
// whole sequence.
func (t *Trainer) keptBytes() int64 {
	h := t.h
	qdim, kvd := int64(h.Heads*h.HeadDim()), int64(h.KVDim())
	var n int64
	for _, s := range t.sched.Segments {
		tok, all := int64(s.Tokens), int64(s.Rows+s.Tokens)
		per := 2*int64(h.Dim) + 2*qdim + 2*int64(h.FFN) + 2*int64(h.Heads)
		if t.sched.Window > 0 {
			per += qdim
		}
		if t.cfg.Rank > 0 {
			per += numTargets * int64(t.cfg.Rank)
		}
		if t.cfg.All {
			per += int64(h.Dim + h.FFN)
		}
		n += 4 * (tok*per + all*kvd)
		if len(t.sched.Segments) > 1 {
			n += 4 * all * kvd
		}
	}
	return n
}

// allocKept keeps the activations of as many layers as Config.ActivationBytes allows.
func (t *Trainer) allocKept() error {
	budget := t.cfg.ActivationBytes
	if budget == 0 {
		budget = DefaultActivationBytes
	}
	if per := t.keptBytes(); budget > 0 && per > 0 {
		t.kept = int(min(int64(t.h.Layers), budget/per))
	}
	if t.kept == 0 {
		return nil
	}
	before := t.dev.AllocatedBytes()
	t.b.kept = make([][]acts, len(t.sched.Segments))
	for g, s := range t.sched.Segments {
		t.b.kept[g] = make([]acts, t.kept)
		for l := range t.b.kept[g] {
			if err := t.allocActs(&t.b.shared, g, s.Tokens, s.Rows, &t.b.kept[g][l]); err != nil {
				return err
			}
		}
	}
	t.saved = t.dev.AllocatedBytes() - before
	return nil
}

// acts is the activation set layer l uses over segment g.
func (t *Trainer) acts(g, l int) *acts {
	if l < t.kept {
		return &t.b.kept[g][l]
	}
	return &t.b.shared
}

// values is the value cache layer l's attention reads over segment g.
func (t *Trainer) values(a *acts, l int) *engine.Tensor {
	if a.vc != nil {
		return a.vc
	}
	return t.b.vc[l]
}

// KeptLayers is the number of layers whose activations are kept from the
// forward (the others are recomputed in the backward), and KeptBytes their
// device memory (part of Bytes).
func (t *Trainer) KeptLayers() int { return t.kept }

// KeptBytes is the device memory of the kept activations (part of Bytes).
func (t *Trainer) KeptBytes() int64 { return t.saved }

func (t *Trainer) compressParams() shaders.CompressParams {
	c := t.cfg.Cache.FreqKV()
	return shaders.CompressParams{Sink: c.Sink, Span: c.Span(), Kept: c.Kept(), Recent: c.Recent,
		Channels: t.h.KVDim(), Batches: 2 * t.h.Layers, BatchStride: t.b.kvStride}
}

func u32le(v []uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
	}
	return b
}

// Release frees the trainer's device memory (not the model's).
func (t *Trainer) Release() {
	for _, p := range t.Params {
		p.release()
	}
	t.Params = nil
	b := &t.b
	all := []*engine.Tensor{b.ids, b.targets, b.dxf, b.posRow, b.posSink, b.dqs, b.dkv2, b.xin, b.xout, b.dx, b.dxb,
		b.q, b.datt, b.dqrot, b.dq, b.k, b.v, b.dk, b.dv, b.du, b.dgate, b.dup, b.dhidden,
		b.inv, b.dkrot, b.dkun, b.adj, b.adjWork, b.adjWork2, b.dctWork, b.adjMat, b.compScratch,
		b.hx, b.hn, b.dh, b.logits, b.nll, b.dwDummy, b.partials, b.clip}
	shared := map[*engine.Tensor]bool{}
	for _, x := range b.shared.tensors() {
		shared[x] = true
	}
	all = append(all, b.shared.tensors()...)
	for _, seg := range b.kept {
		for i := range seg {
			for _, x := range seg[i].tensors() {
				if !shared[x] {
					all = append(all, x)
				}
			}
		}
	}
	all = append(all, b.kv) // kc and vc are views of it
	for _, list := range [][]*engine.Tensor{b.ckpt, b.posQ, b.index, b.dkc, b.dvc, b.snapK, b.snapV} {
		all = append(all, list...)
	}
	for _, x := range all {
		if x != nil {
			x.Release()
		}
	}
	t.b = buffers{}
}

// Counts are the GPU work a Trainer has recorded since it was made.
type Counts struct {
	Dispatches int // compute dispatches
	Submits    int // command buffers submitted
	Waits      int // times the host waited for the GPU
}

// Counts returns the work recorded so far (difference two to cost a step).
func (t *Trainer) Counts() Counts { return t.counts }

// Bytes is the device memory the trainer allocated: trainable parameters,
// their gradients and AdamW moments, checkpoints, caches and one layer's
// activations.
func (t *Trainer) Bytes() int64 { return t.bytes }

// ParamBytes is the part of Bytes held by parameters, gradients and moments.
func (t *Trainer) ParamBytes() int64 {
	var n int64
	for _, p := range t.Params {
		n += 4 * 4 * int64(p.Elements())
	}
	return n
}

// Schedule is the segments a sequence runs in.
func (t *Trainer) Schedule() Schedule { return t.sched }

// Steps is the number of optimiser steps taken.
func (t *Trainer) Steps() int { return t.steps }

// Param returns the trainable tensor of a name, or nil.
func (t *Trainer) Param(name string) *Param {
	for _, p := range t.Params {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// weights the forward reads: trainable copies where they exist.
func (t *Trainer) embTable() *engine.Weight {
	if t.embd != nil {
		return t.embd.Value
	}
	return t.base.Embedding
}

func (t *Trainer) outWeight() *engine.Weight {
	if t.h.TiedOutput {
		return t.embTable()
	}
	if t.outFull != nil {
		return t.outFull.Value
	}
	return t.base.Output
}

// weight is block l's matrix i: its trainable copy or the frozen base.
func (t *Trainer) weight(l, i int) *engine.Weight {
	if p := t.full[l][i]; p != nil {
		return p.Value
	}
	lt := t.base.Layers[l]
	return [numMats]*engine.Weight{lt.Wq, lt.Wk, lt.Wv, lt.Wo, lt.Gate, lt.Up, lt.Down}[i]
}

func pick(p *Param, base *engine.Tensor) *engine.Tensor {
	if p != nil {
		return p.T()
	}
	return base
}

func (t *Trainer) attnNormW(l int) *engine.Tensor {
	return pick(t.attnNorm[l], t.base.Layers[l].AttnNorm)
}
func (t *Trainer) ffnNormW(l int) *engine.Tensor { return pick(t.ffnNorm[l], t.base.Layers[l].FFNNorm) }
func (t *Trainer) outNormW() *engine.Tensor      { return pick(t.outNorm, t.base.OutputNorm) }

// gradOrDummy is a norm's weight-gradient tensor, a scratch one when frozen.
func (t *Trainer) gradOrDummy(p *Param) *engine.Tensor {
	if p != nil {
		return p.Grad
	}
	return t.b.dwDummy
}

func checkFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
