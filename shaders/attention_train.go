package shaders

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
)

const (
	attentionTrainWG = 32
	// attentionTrainMaxD bounds the head dim: each invocation keeps up to
	// four head-dim vectors in private memory.
	attentionTrainMaxD = 256
	// attentionTrainHB bounds the heads a forward invocation keeps (each adds
	// two head-dim vectors of private memory).
	attentionTrainHB = 4
	// attentionTrainLoopBudget bounds the loop iterations one invocation runs
	// in one dispatch: llvmpipe (lavapipe) ends every loop of an invocation
	// once their iterations together reach 65535 (gallivm's
	// LP_MAX_TGSI_LOOP_ITERATIONS), silently, so the launchers split the long
	// loop into dispatches. The counts below assume no loop is unrolled.
	attentionTrainLoopBudget = loopBudget
)

// TrainAttentionParams describes the attention of one training group: T
// queries see P prefix rows (sinks, compressed rows, recent rows) and,
// causally, their own T rows. K/V tensors hold P+T rows, prefix first.
// Queries and keys come rotated (post-RoPE): with the cache's convention,
// key row j has position j and query t position P+t, which is what the
// inference Attention kernel computes for a cache of Rows = P, no window.
type TrainAttentionParams struct {
	T, P, Heads, KVHeads, HeadDim int
	Scale                         float32
	AccumulatePrefix              bool // backward: dk, dv rows [0, P) += (else =)
	AccumulateOwn                 bool // backward: dk, dv rows [P, P+T) += (else =)
}

func (p TrainAttentionParams) check() error {
	switch {
	case p.T < 1 || p.P < 0 || p.Heads < 1 || p.KVHeads < 1:
		return fmt.Errorf("T = %d, P = %d, Heads = %d, KVHeads = %d: want T, Heads, KVHeads >= 1 and P >= 0", p.T, p.P, p.Heads, p.KVHeads)
	case p.Heads%p.KVHeads != 0:
		return fmt.Errorf("%d KV heads don't divide %d heads", p.KVHeads, p.Heads)
	case p.HeadDim < 1 || p.HeadDim > attentionTrainMaxD:
		return fmt.Errorf("head dim %d is outside 1..%d", p.HeadDim, attentionTrainMaxD)
	case math.IsNaN(float64(p.Scale)) || math.IsInf(float64(p.Scale), 0):
		return fmt.Errorf("scale %g is not finite", p.Scale)
	case ceilDiv(p.P+p.T, attentionTrainWG) > maxWorkDim:
		return fmt.Errorf("%d rows are too many for one dispatch", p.P+p.T)
	case uint64(p.P+p.T)*uint64(p.Heads*p.HeadDim) >= 1<<32:
		return fmt.Errorf("%d rows of %d heads overflow 32-bit indexing", p.P+p.T, p.Heads)
	}
	return nil
}

// attentionTrainUniform is the Params of attention_train_common.wgsl, shared by the
// training attention's forward and backward files.
type attentionTrainUniform struct {
	t, prefix         uint32
	heads, kvHeads    uint32
	scale             float32
	accPrefix, accOwn uint32 // dkv: 1 adds into the rows of the prefix / the own rows
	lo, hi            uint32 // the dispatch's chunk of keys (forward, dq) or queries (dkv)
}

func (p TrainAttentionParams) words(lo, hi int) []uint32 {
	return words(attentionTrainUniform{t: uint32(p.T), prefix: uint32(p.P), heads: uint32(p.Heads), kvHeads: uint32(p.KVHeads),
		scale: p.Scale, accPrefix: b2u(p.AccumulatePrefix), accOwn: b2u(p.AccumulateOwn), lo: uint32(lo), hi: uint32(hi)})
}

// chunk is how many keys (forward, dq) or queries (dkv) one dispatch takes
// so that an invocation's loop iterations stay within
// attentionTrainLoopBudget: fixed iterations outside the long loop, per
// iterations inside one of its steps (counted from the WGSL, inner loops
// included).
func chunk(fixed, per int) int {
	return max(1, (attentionTrainLoopBudget-fixed)/per)
}

// keyChunk is the keys per forward or dq dispatch. Forward per key: the
// score loop D·(1+HB), the rescale HB·(1+D), the value loop D·(1+HB); dq:
// two loops of D·(1+HB) and HB. Both load and store HB·D values outside.
func (p TrainAttentionParams) keyChunk() int {
	d, hb := p.HeadDim, p.headBlock()
	return chunk(4*hb*d+4*hb, 1+hb+d*(2+3*hb))
}

// queryChunk is the queries per dkv dispatch: per query G heads of two loops
// of D; 3·D to load and store the row.
func (p TrainAttentionParams) queryChunk() int {
	d, g := p.HeadDim, p.Heads/p.KVHeads
	return chunk(3*d, 1+g*(1+2*d))
}

// grid is the dkv pass's: a workgroup per attentionTrainWG rows of one head.
func (p TrainAttentionParams) grid(rows, heads int) [3]uint32 {
	return [3]uint32{uint32(ceilDiv(rows, attentionTrainWG)), uint32(heads), 1}
}

func (p TrainAttentionParams) consts() engine.Constants {
	return engine.Constants{"WG": u(attentionTrainWG), "D": u(p.HeadDim), "G": u(p.Heads / p.KVHeads), "HB": u(p.headBlock())}
}

// headBlock is the query heads one forward or dq invocation takes: the largest
// divisor of the group size up to attentionTrainHB, so every K/V load
// serves that many heads.
func (p TrainAttentionParams) headBlock() int {
	g := p.Heads / p.KVHeads
	for hb := min(g, attentionTrainHB); hb > 1; hb-- {
		if g%hb == 0 {
			return hb
		}
	}
	return 1
}

type namedTensor struct {
	t    *engine.Tensor
	name string
	n    int
}

func needAll(what string, ts []namedTensor) error {
	for _, c := range ts {
		if err := need(what+" "+c.name, c.t, engine.F32, c.n); err != nil {
			return err
		}
	}
	return nil
}

// AttentionTrain records the training forward of one group's attention
// (attention_train.wgsl): out = softmax(Scale·q·kᵀ over the visible rows)·v,
// and stats[t, h, 0] = the scores' logsumexp for the backward. q, out f32
// [T, Heads*HeadDim]; k, v f32 [P+T, KVHeads*HeadDim]; stats f32 [T, Heads, 2].
func (o *Ops) AttentionTrain(rec *engine.Recorder, q, k, v, out, stats *engine.Tensor, p TrainAttentionParams) error {
	const what = "attention train"
	if err := p.check(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	qn, kn := p.T*p.Heads*p.HeadDim, (p.P+p.T)*p.KVHeads*p.HeadDim
	if err := needAll(what, []namedTensor{{q, "q", qn}, {k, "k", kn}, {v, "v", kn}, {out, "out", qn}, {stats, "stats", 2 * p.T * p.Heads}}); err != nil {
		return err
	}
	for _, w := range []*engine.Tensor{out, stats} {
		if err := distinct(what, w, q, k, v); err != nil {
			return err
		}
	}
	if out.Buf == stats.Buf {
		return fmt.Errorf("%s: out and stats share buffer %q", what, out.Buf.Label)
	}
	kern, err := o.kernel("attention_train.wgsl", "forward", p.consts())
	if err != nil {
		return err
	}
	rows, step := p.P+p.T, p.keyChunk()
	for lo := 0; lo < rows; lo += step {
		// queries whose keys ended before lo return at once
		if err := rec.Dispatch(kern, p.words(lo, min(rows, lo+step)), engine.Grid(p.T*p.Heads/p.headBlock(), attentionTrainWG),
			q.Binding(), k.Binding(), v.Binding(), out.Binding(), stats.Binding()); err != nil {
			return err
		}
	}
	return nil
}

// AttentionTrainBackward records the gradients of AttentionTrain given dout
// (attention_train_dq.wgsl, then attention_train_dkv.wgsl), recomputing the
// scores from the saved logsumexp (FlashAttention-2; nothing of size T×rows
// is stored). It writes stats[t, h, 1] = Σ dout∘out, overwrites dq
// [T, Heads*HeadDim], and writes dk, dv [P+T, KVHeads*HeadDim] per the
// Accumulate flags. out and stats are the forward's.
func (o *Ops) AttentionTrainBackward(rec *engine.Recorder, q, k, v, out, dout, stats, dq, dk, dv *engine.Tensor, p TrainAttentionParams) error {
	const what = "attention train backward"
	if err := p.check(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	qn, kn := p.T*p.Heads*p.HeadDim, (p.P+p.T)*p.KVHeads*p.HeadDim
	if err := needAll(what, []namedTensor{{q, "q", qn}, {k, "k", kn}, {v, "v", kn}, {out, "out", qn}, {dout, "dout", qn},
		{stats, "stats", 2 * p.T * p.Heads}, {dq, "dq", qn}, {dk, "dk", kn}, {dv, "dv", kn}}); err != nil {
		return err
	}
	ins := []*engine.Tensor{q, k, v, out, dout}
	for _, w := range []*engine.Tensor{stats, dq, dk, dv} {
		if err := distinct(what, w, ins...); err != nil {
			return err
		}
	}
	if stats.Buf == dq.Buf || dk.Buf == dv.Buf || stats.Buf == dk.Buf || stats.Buf == dv.Buf {
		return fmt.Errorf("%s: stats, dq, dk and dv need their own buffers (dk and dv too)", what)
	}
	kq, err := o.kernel("attention_train_dq.wgsl", "dq_pass", p.consts())
	if err != nil {
		return err
	}
	rows, step := p.P+p.T, p.keyChunk()
	for lo := 0; lo < rows; lo += step {
		if err := rec.Dispatch(kq, p.words(lo, min(rows, lo+step)), engine.Grid(p.T*p.Heads/p.headBlock(), attentionTrainWG),
			q.Binding(), k.Binding(), v.Binding(), out.Binding(), dout.Binding(), stats.Binding(), dq.Binding()); err != nil {
			return err
		}
	}
	kkv, err := o.kernel("attention_train_dkv.wgsl", "dkv_pass", p.consts())
	if err != nil {
		return err
	}
	step = p.queryChunk()
	for lo := 0; lo < p.T; lo += step {
		hi := min(p.T, lo+step)
		c := p
		grid := p.grid(p.P+hi, p.KVHeads) // rows past P+hi see none of these queries
		if lo > 0 {
			c.AccumulatePrefix, c.AccumulateOwn = true, true // add to the first chunk's rows
		} else {
			grid = p.grid(rows, p.KVHeads) // the first chunk writes every row
		}
		if err := rec.Dispatch(kkv, c.words(lo, hi), grid,
			q.Binding(), k.Binding(), v.Binding(), dout.Binding(), stats.Binding(), dk.Binding(), dv.Binding()); err != nil {
			return err
		}
	}
	return nil
}
