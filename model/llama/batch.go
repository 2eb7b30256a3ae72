package llama

import (
	"encoding/binary"
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/shaders"
)

// Batch runs one decode step of several contexts in one forward pass: their
// M tokens go through the embedding, the norms and the matmuls as M rows
// (each weight matrix is read once for all of them), while each row's
// key/value store and attention run over its own context's cache. A step
// gives every context exactly what its own Next would, up to the rounding
// of a matmul over M rows instead of one.
type Batch struct {
	m   *Model
	max int // rows the buffers hold

	ids              *engine.Tensor   // u32 (1, max)
	x, xb            *engine.Tensor   // (max, dim)
	q, k, v, att     *engine.Tensor   // (max, heads*hd) / (max, kvHeads*hd)
	gate, up, hidden *engine.Tensor   // (max, ffn)
	logits           *engine.Tensor   // (max, vocab)
	qRow, attRow     *engine.Tensor   // (1, heads*hd): one row's attention, at offset 0
	kRow, vRow       *engine.Tensor   // (1, kvHeads*hd): one row's store
	logitRow         *engine.Tensor   // (1, vocab)
	argmax           []*engine.Tensor // u32 (1, 1) per row
	picks            *engine.Tensor   // u32 (1, max): the rows' argmax gathered
}

// Batchable reports, as an error naming the architecture, a model whose
// forward pass the batch step does not rebuild (qwen3's Q/K norms, gemma2):
// such models decode one sequence at a time.
func (m *Model) Batchable() error {
	h := m.H
	if h.QKNorm || h.PostNorms || h.GELU || h.EmbedScale || h.AttnSoftcap > 0 || h.FinalSoftcap > 0 || h.QueryScale > 0 || h.WindowPattern > 0 {
		return fmt.Errorf("batched decoding does not implement the %s architecture's forward pass; decode one sequence at a time", h.Arch)
	}
	return nil
}

// NewBatch allocates a batch of up to rows contexts.
func (m *Model) NewBatch(rows int) (*Batch, error) {
	if rows < 1 {
		return nil, fmt.Errorf("batch of %d rows: want at least 1", rows)
	}
	if err := m.Batchable(); err != nil {
		return nil, err
	}
	h := m.H
	hd := h.HeadDim()
	b := &Batch{m: m, max: rows}
	var err error
	t := func(name string, dt engine.DType, r, c int) *engine.Tensor {
		if err != nil {
			return nil
		}
		var x *engine.Tensor
		x, err = m.dev.NewTensor("batch_"+name, dt, r, c)
		return x
	}
	b.ids = t("ids", engine.U32, 1, rows)
	b.x = t("x", engine.F32, rows, h.Dim)
	b.xb = t("xb", engine.F32, rows, h.Dim)
	b.q = t("q", engine.F32, rows, h.Heads*hd)
	b.k = t("k", engine.F32, rows, h.KVHeads*hd)
	b.v = t("v", engine.F32, rows, h.KVHeads*hd)
	b.att = t("att", engine.F32, rows, h.Heads*hd)
	b.gate = t("gate", engine.F32, rows, h.FFN)
	b.up = t("up", engine.F32, rows, h.FFN)
	b.hidden = t("hidden", engine.F32, rows, h.FFN)
	b.logits = t("logits", engine.F32, rows, h.Vocab)
	b.qRow = t("q_row", engine.F32, 1, h.Heads*hd)
	b.attRow = t("att_row", engine.F32, 1, h.Heads*hd)
	b.kRow = t("k_row", engine.F32, 1, h.KVHeads*hd)
	b.vRow = t("v_row", engine.F32, 1, h.KVHeads*hd)
	b.logitRow = t("logit_row", engine.F32, 1, h.Vocab)
	b.picks = t("picks", engine.U32, 1, rows)
	for i := range rows {
		b.argmax = append(b.argmax, t(fmt.Sprint("argmax", i), engine.U32, 1, 1))
	}
	if err != nil {
		b.Release()
		return nil, err
	}
	return b, nil
}

// Release frees the batch's buffers.
func (b *Batch) Release() {
	for _, t := range append([]*engine.Tensor{b.ids, b.x, b.xb, b.q, b.k, b.v, b.att, b.gate, b.up, b.hidden, b.logits,
		b.qRow, b.attRow, b.kRow, b.vRow, b.logitRow, b.picks}, b.argmax...) {
		if t != nil {
			t.Release()
		}
	}
}

// copyRow records a copy of row i of src to row j of dst (same widths).
func copyRow(rec *engine.Recorder, src *engine.Tensor, i int, dst *engine.Tensor, j int) error {
	sb, so, size := row(src, i)
	db, do, _ := row(dst, j)
	return rec.Copy(sb, so, db, do, size)
}

// Step feeds tokens[i] to ctxs[i] (distinct contexts of this model, each
// with room for one more token) and returns each one's next token: argmax
// where greedy[i], else sampled by samplers[i] from its logits given
// histories[i].
func (b *Batch) Step(ctxs []*Context, tokens []int32, samplers []*Sampler, histories [][]int32) ([]int32, error) {
	n := len(ctxs)
	switch {
	case n == 0:
		return nil, nil
	case n > b.max:
		return nil, fmt.Errorf("batch step of %d contexts: the batch holds %d", n, b.max)
	case len(tokens) != n || len(samplers) != n || len(histories) != n:
		return nil, fmt.Errorf("batch step: %d contexts, %d tokens, %d samplers, %d histories", n, len(tokens), len(samplers), len(histories))
	}
	seen := map[*Context]bool{}
	for i, c := range ctxs {
		if c.m != b.m {
			return nil, fmt.Errorf("batch step: context %d belongs to another model", i)
		}
		if seen[c] {
			return nil, fmt.Errorf("batch step: context %d appears twice", i)
		}
		seen[c] = true
		if err := c.checkTokens(tokens[i : i+1]); err != nil {
			return nil, err
		}
		if c.Cache.Room() < 1 {
			return nil, fmt.Errorf("batch step: context %d is full", i)
		}
	}
	m, o, h := b.m, b.m.ops, b.m.H
	rec := m.dev.NewRecorder()
	// Room for each row first: a compression is recorded before the step
	// that needs it, as in feed.
	for i, c := range ctxs {
		if _, err := c.Cache.Next(rec, 1); err != nil {
			rec.Discard()
			return nil, fmt.Errorf("context %d after %d tokens: %w", i, c.tokens, err)
		}
	}
	if err := b.ids.Buf.Write(b.ids.Offset, u32bytes(tokens)); err != nil {
		rec.Discard()
		return nil, err
	}
	if err := b.record(rec, ctxs); err != nil {
		rec.Discard()
		return nil, err
	}
	// Greedy rows take their argmax on the device; the others read their
	// logits back.
	var reads []*engine.Readback
	greedy := 0
	for i, s := range samplers {
		if s.Greedy() {
			greedy++
			if err := copyRow(rec, b.logits, i, b.logitRow, 0); err != nil {
				rec.Discard()
				return nil, err
			}
			if err := o.Argmax(rec, b.logitRow, b.argmax[i], h.Vocab); err != nil {
				rec.Discard()
				return nil, err
			}
			if err := rec.Copy(b.argmax[i].Buf, b.argmax[i].Offset, b.picks.Buf, b.picks.Offset+uint64(4*i), 4); err != nil {
				rec.Discard()
				return nil, err
			}
			reads = append(reads, nil)
		} else {
			buf, off, size := row(b.logits, i)
			reads = append(reads, rec.ReadBack(buf, off, size))
		}
	}
	var picks *engine.Readback
	if greedy > 0 {
		picks = rec.ReadBack(b.picks.Buf, b.picks.Offset, uint64(4*n))
	}
	for _, c := range ctxs {
		c.Cache.Commit(1)
		c.tokens++
	}
	if err := rec.SubmitAndWait(); err != nil {
		return nil, err
	}
	out := make([]int32, n)
	for i, s := range samplers {
		if reads[i] == nil {
			out[i] = int32(binary.LittleEndian.Uint32(picks.Bytes()[4*i:]))
		} else {
			out[i] = s.Sample(reads[i].Float32s(), histories[i])
		}
	}
	return out, nil
}

// record appends the forward pass of one token per context.
func (b *Batch) record(rec *engine.Recorder, ctxs []*Context) error {
	m, o, h := b.m, b.m.ops, b.m.H
	t := len(ctxs)
	eps := float32(h.RMSEps)
	kvDim := h.KVHeads * h.HeadDim()
	if err := o.Embedding(rec, b.ids, m.tokEmbd, b.x, t); err != nil {
		return err
	}
	for li, l := range m.layers {
		pre := []func() error{
			func() error { return o.RMSNorm(rec, b.x, l.attnNorm, b.xb, t, h.Dim, eps) },
			func() error { return o.MatMul(rec, b.xb, l.wq, b.q, t, shaders.MatMulOptions{Bias: l.bq}) },
			func() error { return o.MatMul(rec, b.xb, l.wk, b.k, t, shaders.MatMulOptions{Bias: l.bk}) },
			func() error { return o.MatMul(rec, b.xb, l.wv, b.v, t, shaders.MatMulOptions{Bias: l.bv}) },
		}
		for _, s := range pre {
			if err := s(); err != nil {
				return fmt.Errorf("layer %d: %w", li, err)
			}
		}
		// Each row stores into and attends over its own context's cache;
		// bindings cannot start at an arbitrary row, so rows are copied to
		// and from one-row tensors.
		for i, c := range ctxs {
			view := c.Cache.LayerView(li) // layers may differ (per-layer geometry)
			slots := shaders.KVSlots{T: 1, Rows: view.Rows, Sink: view.Sink, Cap: view.Cap, Dim: kvDim}
			steps := []func() error{
				func() error { return copyRow(rec, b.k, i, b.kRow, 0) },
				func() error { return copyRow(rec, b.v, i, b.vRow, 0) },
				func() error { return copyRow(rec, b.q, i, b.qRow, 0) },
				func() error { return o.StoreKV(rec, b.kRow, c.Cache.K(li), slots) },
				func() error { return o.StoreKV(rec, b.vRow, c.Cache.V(li), slots) },
				func() error {
					if mt, ok := c.Cache.(kvcache.MassTracker); ok { // h2o accumulates attention mass
						return o.AttentionMass(rec, b.qRow, c.Cache.K(li), c.Cache.V(li), c.rope, b.attRow, c.scratch, mt.Mass(li), c.attnParams(1, view))
					}
					return o.Attention(rec, b.qRow, c.Cache.K(li), c.Cache.V(li), c.rope, b.attRow, c.scratch, c.attnParams(1, view))
				},
				func() error { return copyRow(rec, b.attRow, 0, b.att, i) },
			}
			for _, s := range steps {
				if err := s(); err != nil {
					return fmt.Errorf("layer %d, row %d: %w", li, i, err)
				}
			}
		}
		post := []func() error{
			func() error { return o.MatMul(rec, b.att, l.wo, b.x, t, shaders.MatMulOptions{Accumulate: true}) },
			func() error { return o.RMSNorm(rec, b.x, l.ffnNorm, b.xb, t, h.Dim, eps) },
			func() error { return o.MatMul(rec, b.xb, l.wGate, b.gate, t, shaders.MatMulOptions{}) },
			func() error { return o.MatMul(rec, b.xb, l.wUp, b.up, t, shaders.MatMulOptions{}) },
			func() error { return o.SwiGLU(rec, b.gate, b.up, b.hidden, t*h.FFN) },
			func() error { return o.MatMul(rec, b.hidden, l.wDown, b.x, t, shaders.MatMulOptions{Accumulate: true}) },
		}
		for _, s := range post {
			if err := s(); err != nil {
				return fmt.Errorf("layer %d: %w", li, err)
			}
		}
	}
	if err := o.RMSNorm(rec, b.x, m.outNorm, b.xb, t, h.Dim, eps); err != nil {
		return err
	}
	return o.MatMul(rec, b.xb, m.output, b.logits, t, shaders.MatMulOptions{})
}
