package kvcache

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/shaders"
)

// heavy is heavy-hitter eviction (H2O-style) on FreqKV's schedule, so the two compare at
// the same N and the same moments: N rows per layer; when full and another token needs a
// row, each layer's each KV head keeps, of the span [S, S+L), the m = floor(L*g) rows that
// received the most attention so far (in their order), the R recent rows move up behind
// them, and the next L-m tokens get rows. Sinks stay. Attention received is accumulated
// per (layer, KV head, row) by the attention kernel's mass variant (Mass); a row's mass
// moves with it. Row i has position i, so positions stay below N, as in FreqKV.
type heavy struct {
	dev        *engine.Device
	ops        *shaders.Ops
	cfg        freqkv.Config // the schedule (Plan); Keep and Scale are unused
	s          *store
	mass       *engine.Tensor // f32 [layers, massStride]: layer l's [kvHeads, cap] at l*massStride
	massStride int            // floats per layer, kvHeads*cap rounded up to a binding offset
	idx, temp  *engine.Tensor // u32 [layers*kvHeads*keep], u32 KeepRowsTemp
	staging    *engine.Tensor // f32 [cap, C]: one quantised matrix, dequantised (nil without)
	rows       int
	evictions  int
	c          committer
}

// MassTracker is a policy whose attention must accumulate per-row attention mass:
// the runtime calls shaders.AttentionMass with Mass(layer) instead of Attention.
type MassTracker interface {
	Mass(layer int) *engine.Tensor // f32 [KVHeads, Cap]
}

func newHeavy(dev *engine.Device, ops *shaders.Ops, g Geometry, spec Spec) (Policy, error) {
	if ops == nil {
		ops = shaders.New(dev)
	}
	cfg := spec.FreqKV()
	s, err := newStore(dev, g, spec, 0)
	if err != nil {
		return nil, err
	}
	h := &heavy{dev: dev, ops: ops, cfg: cfg, s: s}
	keep := cfg.Kept() + cfg.Recent
	most, quant := 0, false
	for _, a := range s.arenas {
		most = max(most, a.count)
		quant = quant || shaders.IsQuantKV(a.dtype)
	}
	t := func(name string, dt engine.DType, rows, cols int) *engine.Tensor {
		if err != nil {
			return nil
		}
		var x *engine.Tensor
		x, err = dev.NewTensor(name, dt, rows, cols)
		return x
	}
	// each layer's masses start at a binding offset the device accepts
	align := max(4, int(dev.Limits.MinStorageBufferOffsetAlignment)) / 4
	h.massStride = (g.KVHeads*spec.Size + align - 1) / align * align
	h.mass = t("h2o attention mass", engine.F32, g.Layers, h.massStride)
	h.idx = t("h2o kept rows", engine.U32, 1, g.Layers*g.KVHeads*keep)
	words := 0
	for _, a := range s.arenas {
		words = max(words, shaders.KeepRowsTemp(h.params(0, a.count, a.stride), a.dtype))
	}
	if quant {
		words = max(words, shaders.KeepRowsTemp(h.params(0, 1, s.cap), engine.F32))
		h.staging = t("h2o quantised matrix staging", engine.F32, s.cap, g.Channels())
	}
	h.temp = t("h2o compaction temp", engine.U32, 1, words)
	if err == nil {
		err = h.zeroMass()
	}
	if err == nil {
		// compile the compaction's kernels now, not at the first eviction
		rec := dev.NewRecorder()
		err = h.compact(rec)
		rec.Discard()
	}
	if err != nil {
		h.Release()
		return nil, fmt.Errorf("kvcache: h2o: %w", err)
	}
	return h, nil
}

func (h *heavy) params(first, n, stride int) shaders.KeepRowsParams {
	return shaders.KeepRowsParams{Sink: h.cfg.Sink, Keep: h.cfg.Kept() + h.cfg.Recent, KVHeads: h.s.g.KVHeads, HeadDim: h.s.g.HeadDim,
		Batches: n, BatchStride: stride, FirstMatrix: first, Layers: h.s.g.Layers}
}

// compact records the compaction of every matrix to the rows in idx: whole arenas at once
// when K and V share one plain type (matrices K, V, K, V... in arena order); else matrix by
// matrix, a quantised one dequantised into the staging, compacted in f32 and its kept rows
// [S, S+m+R) quantised back.
func (h *heavy) compact(rec *engine.Recorder) error {
	sp := h.s.spec
	if sp.KeyType() == sp.ValueType() && !shaders.IsQuantKV(sp.KeyType()) {
		first := 0
		for i, a := range h.s.arenas {
			if err := h.ops.KeepRows(rec, h.s.arena(i), h.idx, h.temp, h.params(first, a.count, a.stride)); err != nil {
				return err
			}
			first += a.count
		}
		return nil
	}
	for i, m := range h.s.matrices {
		if !shaders.IsQuantKV(m.DType) {
			if err := h.ops.KeepRows(rec, m, h.idx, h.temp, h.params(i, 1, h.s.cap)); err != nil {
				return err
			}
			continue
		}
		keep := h.cfg.Kept() + h.cfg.Recent
		all := shaders.QuantRows{T: h.s.cap, Cap: h.s.cap, Dim: h.s.g.Channels(), Batches: 1, F32Stride: h.s.cap}
		if err := h.ops.DequantizeKV(rec, m, h.staging, all); err != nil {
			return err
		}
		if err := h.ops.KeepRows(rec, h.staging, h.idx, h.temp, h.params(i, 1, h.s.cap)); err != nil {
			return err
		}
		back := all
		back.T, back.Rows, back.F32First = keep, h.cfg.Sink, h.cfg.Sink
		if err := h.ops.QuantizeKV(rec, h.staging, m, back); err != nil {
			return err
		}
	}
	return nil
}

func (h *heavy) zeroMass() error {
	return h.mass.Buf.Write(h.mass.Offset, make([]byte, 4*h.mass.Rows*h.mass.Cols))
}

func (h *heavy) Spec() Spec { return h.s.spec }
func (h *heavy) Room() int  { return Unbounded }

// Mass is layer's attention mass, f32 [KVHeads, Cap] (a view of the shared tensor).
func (h *heavy) Mass(layer int) *engine.Tensor {
	l := h.s.layer(layer)
	return &engine.Tensor{Buf: h.mass.Buf, Offset: h.mass.Offset + uint64(4*l*h.massStride), DType: engine.F32, Rows: h.s.g.KVHeads, Cols: h.cfg.CacheSize}
}

func (h *heavy) Next(rec *engine.Recorder, n int) (int, error) {
	if err := checkNext(n); err != nil {
		return 0, err
	}
	steps, err := h.cfg.Plan(h.rows, n)
	if err != nil {
		return 0, fmt.Errorf("kvcache: %w", err)
	}
	if steps[0].Kind == freqkv.StepCompress {
		if err := h.evict(rec); err != nil {
			return 0, fmt.Errorf("kvcache: h2o eviction: %w", err)
		}
		h.rows -= steps[0].Rows
		h.evictions++
		steps = steps[1:]
	}
	h.c.allowed = steps[0].Rows
	return h.c.allowed, nil
}

// evict reads the masses back (earlier steps have completed: every step is waited for),
// picks each head's rows on the CPU, uploads the row lists and the compacted masses, and
// records the compaction on rec.
func (h *heavy) evict(rec *engine.Recorder) error {
	r := h.dev.NewRecorder()
	rb := r.ReadBack(h.mass.Buf, h.mass.Offset, uint64(4*h.mass.Rows*h.mass.Cols))
	if err := r.SubmitAndWait(); err != nil {
		return err
	}
	padded := rb.Float32s()
	per := h.s.g.KVHeads * h.cfg.CacheSize
	mass := make([]float32, 0, h.s.g.Layers*per)
	for l := range h.s.g.Layers {
		mass = append(mass, padded[l*h.massStride:l*h.massStride+per]...)
	}
	idx, next := SelectHeavy(mass, h.s.g.Layers*h.s.g.KVHeads, h.cfg)
	b := make([]byte, 4*len(idx))
	for i, x := range idx {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	if err := h.idx.Buf.Write(h.idx.Offset, b); err != nil {
		return err
	}
	mb := make([]byte, 4*len(padded))
	for i, x := range next {
		binary.LittleEndian.PutUint32(mb[4*((i/per)*h.massStride+i%per):], math.Float32bits(x))
	}
	if err := h.mass.Buf.Write(h.mass.Offset, mb); err != nil {
		return err
	}
	return h.compact(rec)
}

// SelectHeavy is the eviction rule, on the CPU: mass holds, for each of heads (layer, KV
// head) pairs, cfg.CacheSize masses, one per row. For each head it returns the rows that
// stay after the sinks, in order: the m = cfg.Kept() rows of [S, S+L) with the largest
// mass (ties to the older row), then the R recent rows [S+L, S+L+R); and the masses after
// the compaction (sinks unchanged, kept rows' masses moved with them, the rest zero).
func SelectHeavy(mass []float32, heads int, cfg freqkv.Config) (idx []int, next []float32) {
	n, s, l, m, r := cfg.CacheSize, cfg.Sink, cfg.Span(), cfg.Kept(), cfg.Recent
	keep := m + r
	idx = make([]int, 0, heads*keep)
	next = make([]float32, len(mass))
	order := make([]int, l)
	for hd := range heads {
		row := mass[hd*n : (hd+1)*n]
		for i := range order {
			order[i] = s + i
		}
		sort.SliceStable(order, func(a, b int) bool { return row[order[a]] > row[order[b]] })
		kept := append([]int(nil), order[:m]...)
		sort.Ints(kept)
		for j := range r {
			kept = append(kept, s+l+j)
		}
		out := next[hd*n : (hd+1)*n]
		copy(out[:s], row[:s])
		for i, src := range kept {
			out[s+i] = row[src]
		}
		idx = append(idx, kept...)
	}
	return idx, next
}

func (h *heavy) Commit(n int) {
	h.c.commit(n)
	h.rows += n
}

func (h *heavy) View() View                 { return View{Rows: h.rows, Cap: h.cfg.CacheSize} }
func (h *heavy) K(layer int) *engine.Tensor { return h.s.k(layer) }
func (h *heavy) V(layer int) *engine.Tensor { return h.s.v(layer) }
func (h *heavy) MaxPosition() int           { return h.cfg.CacheSize }

func (h *heavy) Stats() Stats {
	return Stats{Rows: h.rows, Compressions: h.evictions, Tokens: h.c.tokens, Bytes: h.s.bytes}
}

func (h *heavy) Reset() {
	h.rows, h.evictions = 0, 0
	h.c = committer{}
	_ = h.zeroMass() // fails only on a lost device, which every later step reports too
}

func (h *heavy) Release() {
	h.s.release()
	for _, t := range []*engine.Tensor{h.mass, h.idx, h.temp, h.staging} {
		if t != nil {
			t.Release()
		}
	}
	h.mass, h.idx, h.temp = nil, nil, nil
}
func (h *heavy) LayerView(int) View { return h.View() }
