package shaders

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
)

const windowTrainWG = 32

// WindowAttentionParams describes training attention of T queries over their own T key
// rows under a StreamingLLM window: query t sees the sinks j < min(Sink, t+1) and rows
// [max(Sink, t+1-Window), t] (see attention_window_train.wgsl for positions).
type WindowAttentionParams struct {
	T, Heads, KVHeads, HeadDim int
	Sink, Window               int
	Scale                      float32
}

func (p WindowAttentionParams) check() error {
	switch {
	case p.T < 1 || p.Heads < 1 || p.KVHeads < 1 || p.HeadDim < 1:
		return fmt.Errorf("T = %d, Heads = %d, KVHeads = %d, HeadDim = %d: want at least 1 of each", p.T, p.Heads, p.KVHeads, p.HeadDim)
	case p.Heads%p.KVHeads != 0:
		return fmt.Errorf("%d KV heads don't divide %d heads", p.KVHeads, p.Heads)
	case p.Sink < 0 || p.Window < 1:
		return fmt.Errorf("sink %d and window %d: want sink >= 0 and window >= 1", p.Sink, p.Window)
	case math.IsNaN(float64(p.Scale)) || math.IsInf(float64(p.Scale), 0):
		return fmt.Errorf("scale %g is not finite", p.Scale)
	case uint64(p.T)*uint64(p.Heads*p.HeadDim) >= 1<<32:
		return fmt.Errorf("tensors over 2^32 elements can't be indexed in a shader")
	}
	return nil
}

// WindowSinkPosition is the position the sink-rotated copy of query t takes: min(t,
// Sink+Window-1).
func WindowSinkPosition(t, sink, window int) int { return min(t, sink+window-1) }

func (o *Ops) windowKernel(entry string, p WindowAttentionParams) (*engine.Kernel, error) {
	return o.kernel("attention_window_train.wgsl", entry, engine.Constants{
		"WG": u(windowTrainWG), "D": u(p.HeadDim), "G": u(p.Heads / p.KVHeads)})
}

// windowTrainUniform is attention_window_train.wgsl's Params.
type windowTrainUniform struct {
	t, heads, kvHeads, sink, window uint32
	scale                           float32
	which                           uint32 // which gradient a backward pass writes
	lo, hi                          uint32 // the dispatch's chunk of key rows (forward, dq) or queries (dkv)
}

func (p WindowAttentionParams) uniforms(which, lo, hi int) []uint32 {
	return words(windowTrainUniform{t: uint32(p.T), heads: uint32(p.Heads), kvHeads: uint32(p.KVHeads), sink: uint32(p.Sink),
		window: uint32(p.Window), scale: p.Scale, which: uint32(which), lo: uint32(lo), hi: uint32(hi)})
}

// keyChunk is the key rows per forward or dq dispatch within loopBudget
// (llvmpipe's loop cap). The lanes of one SIMD group run both sides of a
// branch when they disagree, so score's two loops of D both count (sinks
// against window rows): per key a step, 2·D for the score and at most 2·D for
// the values or dq; 3·D outside.
func (p WindowAttentionParams) keyChunk() int { return chunk(3*p.HeadDim, 1+4*p.HeadDim) }

// queryChunk is the queries per dkv dispatch: per query a step and G heads of
// a step, 2·D for the score, D for dv and 2·D for dk (both branches again);
// 5·D to load, read back and store.
func (p WindowAttentionParams) queryChunk() int {
	return chunk(5*p.HeadDim, 1+p.Heads/p.KVHeads*(1+5*p.HeadDim))
}

// chunks records one dispatch per chunk [lo, hi) of [0, T).
func (p WindowAttentionParams) chunks(step int, dispatch func(lo, hi int) error) error {
	for lo := 0; lo < p.T; lo += step {
		if err := dispatch(lo, min(p.T, lo+step)); err != nil {
			return err
		}
	}
	return nil
}

func (o *Ops) windowCheck(what string, p WindowAttentionParams, qs, kv, ins []*engine.Tensor, stats *engine.Tensor, outs ...*engine.Tensor) error {
	if err := p.check(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for _, t := range qs {
		if err := need(what, t, engine.F32, p.T*p.Heads*p.HeadDim); err != nil {
			return err
		}
	}
	for _, t := range kv {
		if err := need(what, t, engine.F32, p.T*p.KVHeads*p.HeadDim); err != nil {
			return err
		}
	}
	if err := need(what+" stats", stats, engine.F32, 2*p.T*p.Heads); err != nil {
		return err
	}
	for _, out := range outs {
		if err := distinct(what, out, ins...); err != nil {
			return err
		}
	}
	return nil
}

// WindowAttentionTrain records out = softmax(Scale·q·kᵀ)·V over each query's window
// and stats[t, h, 0] = the logsumexp of its scores. qa is the queries rotated at their
// rows, qs rotated at WindowSinkPosition, k the keys rotated at their rows (all f32;
// q [T, Heads*HeadDim], k and v [T, KVHeads*HeadDim]); out f32 [T, Heads*HeadDim], stats
// f32 [T, Heads, 2].
func (o *Ops) WindowAttentionTrain(rec *engine.Recorder, qa, qs, k, v, out, stats *engine.Tensor, p WindowAttentionParams) error {
	const what = "window attention"
	if err := o.windowCheck(what, p, []*engine.Tensor{qa, qs, out}, []*engine.Tensor{k, v}, []*engine.Tensor{qa, qs, k, v, stats}, stats, out); err != nil {
		return err
	}
	if stats.Buf == out.Buf {
		return fmt.Errorf("%s: stats and out share a buffer", what)
	}
	kn, err := o.windowKernel("forward", p)
	if err != nil {
		return err
	}
	return p.chunks(p.keyChunk(), func(lo, hi int) error {
		return rec.Dispatch(kn, p.uniforms(0, lo, hi), engine.Grid(p.T*p.Heads, windowTrainWG),
			qa.Binding(), qs.Binding(), k.Binding(), v.Binding(), qa.Binding(), stats.Binding(), out.Binding())
	})
}

// WindowAttentionTrainBackward records the gradients of WindowAttentionTrain: dqa and
// dqs (of the two rotated query copies, f32 [T, Heads*HeadDim]) and dkv (f32 [2T,
// KVHeads*HeadDim]: rows [0, T) the gradient of the rotated keys, rows [T, 2T) that of
// the values), all overwritten, from dout and the forward's out and stats (whose delta
// column it fills). Scores are recomputed.
func (o *Ops) WindowAttentionTrainBackward(rec *engine.Recorder, qa, qs, k, v, out, dout, stats, dqa, dqs, dkv *engine.Tensor, p WindowAttentionParams) error {
	const what = "window attention backward"
	if err := o.windowCheck(what, p, []*engine.Tensor{qa, qs, out, dout, dqa, dqs}, []*engine.Tensor{k, v}, []*engine.Tensor{qa, qs, k, v, out, dout, stats}, stats, dqa, dqs, dkv); err != nil {
		return err
	}
	if err := need(what+" dkv", dkv, engine.F32, 2*p.T*p.KVHeads*p.HeadDim); err != nil {
		return err
	}
	for _, x := range []*engine.Tensor{dqa, dqs, dkv} {
		if x.Buf == dout.Buf || x.Buf == out.Buf {
			return fmt.Errorf("%s: gradient %q shares a buffer with out or dout", what, x.Buf.Label)
		}
	}
	if dqa.Buf == dqs.Buf {
		return fmt.Errorf("%s: dqa and dqs share a buffer", what)
	}
	if out.Buf == stats.Buf || dout.Buf == stats.Buf {
		return fmt.Errorf("%s: stats shares a buffer with out or dout", what)
	}
	grid := engine.Grid(p.T*p.Heads, windowTrainWG)
	kn, err := o.windowKernel("delta", p)
	if err != nil {
		return err
	}
	if err := rec.Dispatch(kn, p.uniforms(0, 0, p.T), grid, qa.Binding(), qs.Binding(), k.Binding(), v.Binding(), dout.Binding(), stats.Binding(), out.Binding()); err != nil {
		return err
	}
	if kn, err = o.windowKernel("dq", p); err != nil {
		return err
	}
	for which, d := range []*engine.Tensor{dqa, dqs} {
		hiRow := p.T
		if which == 1 {
			hiRow = min(p.T, max(1, p.Sink)) // sink keys only
		}
		for lo := 0; lo < hiRow; lo += p.keyChunk() {
			if err := rec.Dispatch(kn, p.uniforms(which, lo, min(hiRow, lo+p.keyChunk())), grid,
				qa.Binding(), qs.Binding(), k.Binding(), v.Binding(), dout.Binding(), stats.Binding(), d.Binding()); err != nil {
				return err
			}
		}
	}
	if kn, err = o.windowKernel("dkv", p); err != nil {
		return err
	}
	return p.chunks(p.queryChunk(), func(lo, hi int) error {
		return rec.Dispatch(kn, p.uniforms(0, lo, hi), engine.Grid(p.T*p.KVHeads, windowTrainWG),
			qa.Binding(), qs.Binding(), k.Binding(), v.Binding(), dout.Binding(), stats.Binding(), dkv.Binding())
	})
}
