package shaders

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

const (
	lossWG = 64
	// lossMaxVocab keeps an invocation's loop iterations, 2·vocab/lossWG +
	// 2·lossWG, within loopBudget (llvmpipe's loop cap, docs/webgpu.md).
	lossMaxVocab = (loopBudget - 2*lossWG) / 2 * lossWG
)

// lossUniform is loss.wgsl's Params.
type lossUniform struct {
	rows, vocab uint32
}

// NLL records nll[r] = logsumexp(logits[r]) - logits[r, targets[r]] for
// rows r < rows. Targets must be < vocab (the caller validates token ids).
func (o *Ops) NLL(rec *engine.Recorder, logits, targets, nll *engine.Tensor, rows, vocab int) error {
	if rows < 1 || vocab < 1 {
		return fmt.Errorf("nll: rows %d and vocab %d must be positive", rows, vocab)
	}
	if vocab > lossMaxVocab {
		return fmt.Errorf("nll: a vocabulary of %d is over the %d one workgroup reduces", vocab, lossMaxVocab)
	}
	if err := need("nll", logits, engine.F32, rows*vocab); err != nil {
		return err
	}
	if err := need("nll", targets, engine.U32, rows); err != nil {
		return err
	}
	if err := need("nll", nll, engine.F32, rows); err != nil {
		return err
	}
	k, err := o.kernel("loss.wgsl", "main", engine.Constants{"WG": u(lossWG)})
	if err != nil {
		return err
	}
	return rec.Dispatch(k, words(lossUniform{rows: uint32(rows), vocab: uint32(vocab)}), engine.Grid(rows*lossWG, lossWG), logits.Binding(), targets.Binding(), nll.Binding())
}
