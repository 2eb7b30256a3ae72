package llama

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/shaders"
)

// ContextOptions choose a context's KV cache and how it runs.
type ContextOptions struct {
	Cache kvcache.Spec // the cache policy, its parameters and storage type
	// MaxChunk is the most tokens one prefill step takes (default 256).
	MaxChunk int
	// Logits makes every prefill row's logits available (perplexity);
	// otherwise only the last token's are computed.
	Logits bool
}

// ChunkTooLargeError says a prefill chunk's activations do not fit one storage binding
// of the device, and the largest chunk that does.
type ChunkTooLargeError struct {
	Chunk, Max int
	Limit      uint64 // the device's storage binding limit in bytes
}

func (e *ChunkTooLargeError) Error() string {
	return fmt.Sprintf("a prefill chunk of %d tokens needs activations over the device's storage binding limit of %d bytes; at most %d tokens fit", e.Chunk, e.Limit, e.Max)
}

// Context is one sequence's state: activations and KV cache, allocated once.
type Context struct {
	m     *Model
	ops   *shaders.Ops
	Cache kvcache.Policy
	opts  ContextOptions
	chunk int // rows the activation buffers hold

	ids              *engine.Tensor // u32 (1, chunk)
	x, xb            *engine.Tensor // (chunk, dim) residual stream and normed input
	q, k, v, att     *engine.Tensor // (chunk, heads*hd) / (chunk, kvHeads*hd)
	qn, kn           *engine.Tensor // qwen3: q and k normalised per head; nil otherwise
	gate, up, hidden *engine.Tensor // (chunk, ffn)
	post             *engine.Tensor // gemma2: (chunk, dim) a normalised block output; nil otherwise
	logitsRaw        *engine.Tensor // gemma2: logits before the final softcap; nil otherwise
	last             *engine.Tensor // (1, dim) last row, normed
	lastRaw          *engine.Tensor // (1, dim)
	logits           *engine.Tensor // (chunk or 1, vocab)
	argmax           *engine.Tensor // u32 (1, 1)
	rope             *engine.Tensor // rope table (MaxPosition, ropeDim)
	ropeLocal        *engine.Tensor // gemma3: the local layers' table; nil otherwise
	scratch          *engine.Tensor // attention scratch
	targets, nll     *engine.Tensor // perplexity: u32 and f32 (1, chunk)

	tokens int // tokens consumed
	// lastDispatches is the dispatches of the last greedy Next's submit
	// (benchmarks).
	lastDispatches int
	profile        *engine.Profile // set by WithProfile
}

// Chunk is the most tokens one prefill step of the context takes.
func (c *Context) Chunk() int { return c.chunk }

// NewContext allocates activations and a KV cache. Errors about the cache are kvcache's
// (*kvcache.SpecError, *kvcache.DeviceLimitError); a chunk too large for the device gives
// a *ChunkTooLargeError.
func (m *Model) NewContext(opts ContextOptions) (*Context, error) {
	h := m.H
	if opts.MaxChunk <= 0 {
		opts.MaxChunk = 256
	}
	if most := m.maxChunk(); opts.MaxChunk > most {
		return nil, &ChunkTooLargeError{Chunk: opts.MaxChunk, Max: most, Limit: m.dev.MaxBinding()}
	}
	if opts.Cache.Size > 0 {
		// A step never stores more rows than the cache is long, and a window's ring grows
		// with the chunk: a longer chunk would only cost memory.
		opts.MaxChunk = min(opts.MaxChunk, opts.Cache.Size)
	}
	if opts.Logits {
		// The logits of a chunk must fit one binding.
		maxRows := int(m.dev.MaxBinding() / uint64(4*h.Vocab))
		if maxRows < 1 {
			return nil, fmt.Errorf("vocabulary of %d is too large for one binding", h.Vocab)
		}
		opts.MaxChunk = min(opts.MaxChunk, maxRows)
	}
	cache, spec, err := m.newCache(opts.Cache, opts.MaxChunk)
	if err != nil {
		return nil, err
	}
	opts.Cache = spec
	c := &Context{m: m, ops: m.ops, Cache: cache, opts: opts, chunk: opts.MaxChunk}
	if err := c.alloc(); err != nil {
		c.Release()
		return nil, err
	}
	if err := c.warmUp(); err != nil {
		c.Release()
		return nil, err
	}
	return c, nil
}

// warmUp records (and discards) a decode step and a full prefill chunk, so
// every pipeline they use is compiled now rather than on the first token:
// lavapipe compiles each with LLVM, which costs milliseconds apiece.
func (c *Context) warmUp() error {
	most := c.Cache.View().Cap
	for l := range c.m.H.Layers { // layers may hold fewer rows (per-layer geometry)
		most = min(most, c.Cache.LayerView(l).Cap)
	}
	for _, t := range []int{1, min(c.chunk, most)} {
		rec := c.m.dev.NewRecorder()
		err := c.record(rec, t, false)
		if err == nil && c.opts.Logits {
			err = c.record(rec, t, true)
		}
		if err == nil {
			err = c.ops.Argmax(rec, c.logits, c.argmax, c.m.H.Vocab)
		}
		rec.Discard()
		if err != nil {
			return fmt.Errorf("prepare kernels: %w", err)
		}
	}
	return nil
}

func (c *Context) alloc() error {
	h, d := c.m.H, c.m.dev
	hd := h.HeadDim()
	var err error
	t := func(name string, dt engine.DType, rows, cols int) *engine.Tensor {
		if err != nil {
			return nil
		}
		var x *engine.Tensor
		x, err = d.NewTensor(name, dt, rows, cols)
		return x
	}
	n := c.chunk
	c.ids = t("ids", engine.U32, 1, n)
	c.x = t("x", engine.F32, n, h.Dim)
	c.xb = t("xb", engine.F32, n, h.Dim)
	c.q = t("q", engine.F32, n, h.Heads*hd)
	c.k = t("k", engine.F32, n, h.KVHeads*hd)
	c.v = t("v", engine.F32, n, h.KVHeads*hd)
	c.att = t("att", engine.F32, n, h.Heads*hd)
	if h.QKNorm {
		c.qn = t("q_normed", engine.F32, n, h.Heads*hd)
		c.kn = t("k_normed", engine.F32, n, h.KVHeads*hd)
	}
	c.gate = t("gate", engine.F32, n, h.FFN)
	c.up = t("up", engine.F32, n, h.FFN)
	c.hidden = t("hidden", engine.F32, n, h.FFN)
	c.last = t("last", engine.F32, 1, h.Dim)
	c.lastRaw = t("last_raw", engine.F32, 1, h.Dim)
	logitRows := 1
	if c.opts.Logits {
		logitRows = n
		c.targets = t("targets", engine.U32, 1, n)
		c.nll = t("nll", engine.F32, 1, n)
	}
	c.logits = t("logits", engine.F32, logitRows, h.Vocab)
	if h.PostNorms {
		c.post = t("post_norm", engine.F32, n, h.Dim)
	}
	if h.FinalSoftcap > 0 {
		c.logitsRaw = t("logits_raw", engine.F32, logitRows, h.Vocab)
	}
	c.argmax = t("argmax", engine.U32, 1, 1)
	maxPos := c.Cache.MaxPosition()
	c.rope = t("rope", engine.F32, maxPos, h.RopeDim)
	if h.LocalRopeBase > 0 {
		c.ropeLocal = t("rope_local", engine.F32, maxPos, h.RopeDim)
	}
	if err == nil {
		err = c.uploadRope(maxPos)
	}
	c.scratch = t("attn_scratch", engine.F32, 1, max(1, c.maxAttentionScratch()))
	return err
}

// Release frees the context's buffers and cache.
func (c *Context) Release() {
	for _, t := range []*engine.Tensor{c.ids, c.x, c.xb, c.q, c.k, c.v, c.att, c.qn, c.kn, c.gate, c.up, c.hidden, c.last, c.lastRaw, c.logits, c.argmax, c.rope, c.scratch, c.targets, c.nll, c.post, c.logitsRaw, c.ropeLocal} {
		if t != nil {
			t.Release()
		}
	}
	if c.Cache != nil {
		c.Cache.Release()
	}
}

// Reset empties the cache for a new sequence.
func (c *Context) Reset() {
	c.Cache.Reset()
	c.tokens = 0
}

// Tokens is the number of tokens the context has consumed.
func (c *Context) Tokens() int { return c.tokens }

func (c *Context) attnParams(t int, v kvcache.View) shaders.AttentionParams {
	h := c.m.H
	return shaders.AttentionParams{
		T: t, Heads: h.Heads, KVHeads: h.KVHeads, HeadDim: h.HeadDim(), RopeDim: h.RopeDim, NeoX: h.RopeNeoX,
		Rows: v.Rows, Sink: v.Sink, Window: v.Window, Cap: v.Cap,
		Scale: float32(h.AttentionScale()), Softcap: float32(h.AttnSoftcap),
	}
}

// maxAttentionScratch sizes the attention scratch for the most rows a
// query of this context can ever see, for chunks of 1 and of c.chunk.
func (c *Context) maxAttentionScratch() int {
	most := 0
	for l := range c.m.H.Layers { // layers may differ (per-layer geometry, window layers)
		most = max(most, c.layerAttentionScratch(c.Cache.LayerView(l)))
	}
	return most
}

func (c *Context) layerAttentionScratch(v kvcache.View) int {
	most := 0
	for _, t := range []int{1, c.chunk} {
		w := v
		if w.Window > 0 {
			w.Rows = w.Cap - t + 1 // visibility saturates at sinks + window
		} else {
			t = min(t, w.Cap) // a chunk never exceeds the rows a cache holds
			w.Rows = w.Cap - t
		}
		most = max(most, shaders.AttentionScratch(c.attnParams(t, w)))
	}
	return most
}

// row returns row i of a tensor as a tensor of its own (for copies).
func row(t *engine.Tensor, i int) (buf *engine.Buffer, off uint64, size uint64) {
	rb, _ := t.DType.RowBytes(t.Cols)
	return t.Buf, t.Offset + uint64(i)*rb, rb
}

// record appends one chunk's forward pass (t tokens, already uploaded to
// c.ids) through every layer. The cache must have room (Policy.Next). A launch
// that fails leaves its error on the recorder, which skips everything after it,
// so the pass reads top to bottom and is checked once per layer.
func (c *Context) record(rec *engine.Recorder, t int, allLogits bool) error {
	m, o, h := c.m, c.ops, c.m.H
	eps := float32(h.RMSEps)
	if h.EmbedScale { // gemma2: the embedding times sqrt(dim)
		rec.Check(o.Embedding(rec, c.ids, m.tokEmbd, c.xb, t))
		rec.Check(o.Scale(rec, c.xb, c.x, t*h.Dim, float32(math.Sqrt(float64(h.Dim)))))
	} else {
		rec.Check(o.Embedding(rec, c.ids, m.tokEmbd, c.x, t))
	}
	if err := rec.Err(); err != nil {
		return fmt.Errorf("embedding: %w", err)
	}
	queries, keys := c.q, c.k
	if h.QKNorm {
		queries, keys = c.qn, c.kn
	}
	for i, l := range m.layers {
		// layers of a cache with per-layer geometry hold different numbers of rows
		view := c.Cache.LayerView(i)
		slots := shaders.KVSlots{T: t, Rows: view.Rows, Sink: view.Sink, Cap: view.Cap, Dim: h.KVHeads * h.HeadDim()}
		ap := c.attnParams(t, view)
		k, v := c.Cache.K(i), c.Cache.V(i)
		// attention: x += Wo · attend(q, cache + this chunk's k, v)
		rec.Check(o.RMSNorm(rec, c.x, l.attnNorm, c.xb, t, h.Dim, eps))
		rec.Check(o.MatMul(rec, c.xb, l.wq, c.q, t, shaders.MatMulOptions{Bias: l.bq}))
		rec.Check(o.MatMul(rec, c.xb, l.wk, c.k, t, shaders.MatMulOptions{Bias: l.bk}))
		rec.Check(o.MatMul(rec, c.xb, l.wv, c.v, t, shaders.MatMulOptions{Bias: l.bv}))
		rec.Check(c.qkNorm(rec, l, t))
		rec.Check(o.StoreKV(rec, keys, k, slots))
		rec.Check(o.StoreKV(rec, c.v, v, slots))
		if mt, ok := c.Cache.(kvcache.MassTracker); ok { // h2o: attention also accumulates per-row mass
			rec.Check(o.AttentionMass(rec, queries, k, v, c.layerRope(i), c.att, c.scratch, mt.Mass(i), ap))
		} else {
			rec.Check(o.Attention(rec, queries, k, v, c.layerRope(i), c.att, c.scratch, ap))
		}
		c.residual(rec, c.att, l.wo, l.postAttn, t)
		// feed-forward: x += Wdown · (silu(Wgate · xb) * (Wup · xb)) (gemma2: gelu)
		rec.Check(o.RMSNorm(rec, c.x, l.ffnNorm, c.xb, t, h.Dim, eps))
		rec.Check(o.MatMul(rec, c.xb, l.wGate, c.gate, t, shaders.MatMulOptions{}))
		rec.Check(o.MatMul(rec, c.xb, l.wUp, c.up, t, shaders.MatMulOptions{}))
		if h.GELU {
			rec.Check(o.GeGLU(rec, c.gate, c.up, c.hidden, t*h.FFN))
		} else {
			rec.Check(o.SwiGLU(rec, c.gate, c.up, c.hidden, t*h.FFN))
		}
		c.residual(rec, c.hidden, l.wDown, l.postFFN, t)
		if err := rec.Err(); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	if allLogits {
		rec.Check(o.RMSNorm(rec, c.x, m.outNorm, c.xb, t, h.Dim, eps))
		c.classify(rec, c.xb, t)
		return rec.Err()
	}
	// Only the last token's logits: copy its row out (a binding offset would
	// need 256-byte alignment), normalise and classify it alone.
	buf, off, size := row(c.x, t-1)
	rec.Check(rec.Copy(buf, off, c.lastRaw.Buf, c.lastRaw.Offset, size))
	rec.Check(o.RMSNorm(rec, c.lastRaw, m.outNorm, c.last, 1, h.Dim, eps))
	c.classify(rec, c.last, 1)
	return rec.Err()
}

// residual records x += W·in for a block's output projection W; with a
// post-norm (gemma2), x += rmsnorm(W·in) instead.
func (c *Context) residual(rec *engine.Recorder, in *engine.Tensor, w *engine.Weight, post *engine.Tensor, t int) {
	o, h := c.ops, c.m.H
	if post == nil {
		rec.Check(o.MatMul(rec, in, w, c.x, t, shaders.MatMulOptions{Accumulate: true}))
		return
	}
	rec.Check(o.MatMul(rec, in, w, c.xb, t, shaders.MatMulOptions{}))
	rec.Check(o.RMSNorm(rec, c.xb, post, c.post, t, h.Dim, float32(h.RMSEps)))
	rec.Check(o.Axpy(rec, c.post, 0, c.x, 0, t*h.Dim, 1, 1))
}

// classify records the logits of t normalised rows, softcapped where the
// model says (gemma2).
func (c *Context) classify(rec *engine.Recorder, x *engine.Tensor, t int) {
	o, m := c.ops, c.m
	if m.H.FinalSoftcap == 0 {
		rec.Check(o.MatMul(rec, x, m.output, c.logits, t, shaders.MatMulOptions{}))
		return
	}
	rec.Check(o.MatMul(rec, x, m.output, c.logitsRaw, t, shaders.MatMulOptions{}))
	rec.Check(o.Softcap(rec, c.logitsRaw, c.logits, t*m.H.Vocab, float32(m.H.FinalSoftcap)))
}

// CacheGeometry is the shape of the model's KV cache.
func (m *Model) CacheGeometry() kvcache.Geometry {
	return kvcache.Geometry{Layers: m.H.Layers, KVHeads: m.H.KVHeads, HeadDim: m.H.HeadDim()}
}

// maxChunk is the most tokens a prefill chunk can take on this device: every activation
// tensor, (chunk, width) or (1, chunk), must fit one storage binding. The attention scratch
// depends on the cache as well and is checked when it is allocated.
func (m *Model) maxChunk() int {
	h := m.H
	widest := max(h.Dim, h.Heads*h.HeadDim(), h.KVHeads*h.HeadDim(), h.FFN, 1)
	return int(m.dev.MaxBinding() / uint64(4*widest))
}
