package shaders

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
)

const xentWG = 64

// xentUniform is xent.wgsl's Params.
type xentUniform struct {
	rows, vocab uint32
	scale       float32
}

// CrossEntropy records the fused softmax + NLL and its gradient
// (xent.wgsl): nll[r] = logsumexp(logits[r]) − logits[r, targets[r]], and
// logits is overwritten in place by dlogits = scale·(softmax − onehot).
// A target >= vocab (e.g. 0xFFFFFFFF) masks its row: nll 0, gradient 0.
// logits f32 [rows, vocab] (chunk rows so it fits a binding), targets u32
// [rows], nll f32 [rows].
func (o *Ops) CrossEntropy(rec *engine.Recorder, logits, targets, nll *engine.Tensor, rows, vocab int, scale float32) error {
	const what = "cross entropy"
	if rows < 1 || vocab < 1 {
		return fmt.Errorf("%s: rows %d and vocab %d must be positive", what, rows, vocab)
	}
	if vocab > (loopBudget-2*xentWG)/3*xentWG {
		// three strided passes and two merges per invocation (llvmpipe's loop cap, docs/webgpu.md)
		return fmt.Errorf("%s: a vocabulary of %d is over the %d one workgroup reduces", what, vocab, (loopBudget-2*xentWG)/3*xentWG)
	}
	if uint64(rows)*uint64(vocab) > math.MaxUint32 {
		return fmt.Errorf("%s: %d rows of %d logits overflow 32-bit indexing", what, rows, vocab)
	}
	if err := need(what+" logits", logits, engine.F32, rows*vocab); err != nil {
		return err
	}
	if err := need(what+" targets", targets, engine.U32, rows); err != nil {
		return err
	}
	if err := need(what+" nll", nll, engine.F32, rows); err != nil {
		return err
	}
	if logits.Buf == targets.Buf || nll.Buf == targets.Buf || nll.Buf == logits.Buf {
		return fmt.Errorf("%s: logits, targets and nll need three buffers", what)
	}
	k, err := o.kernel("xent.wgsl", "xent", engine.Constants{"WG": u(xentWG)})
	if err != nil {
		return err
	}
	return rec.Dispatch(k, words(xentUniform{rows: uint32(rows), vocab: uint32(vocab), scale: scale}), engine.Grid(rows*xentWG, xentWG),
		logits.Binding(), targets.Binding(), nll.Binding())
}
