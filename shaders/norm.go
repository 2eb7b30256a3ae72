package shaders

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

const normWG = 64

// normMaxN keeps an invocation's loop iterations (softmax: three strided
// passes of n/normWG and two merges of normWG) within loopBudget, llvmpipe's
// loop cap: rows of up to 1.2 M values.
const normMaxN = (loopBudget - 2*normWG) / 3 * normWG

// normUniform is norm.wgsl's Params.
type normUniform struct {
	rows, n uint32
	eps     float32
}

func (o *Ops) rowwise(entry string, rec *engine.Recorder, x, w, y *engine.Tensor, rows, n int, eps float32) error {
	what := "norm." + entry
	if rows < 1 || n < 1 {
		return fmt.Errorf("%s: rows = %d, n = %d, want both at least 1", what, rows, n)
	}
	if n > normMaxN {
		return fmt.Errorf("%s: rows of %d values are over the %d one workgroup reduces", what, n, normMaxN)
	}
	if err := need(what, x, engine.F32, rows*n); err != nil {
		return err
	}
	if err := need(what, w, engine.F32, n); err != nil {
		return err
	}
	if err := need(what, y, engine.F32, rows*n); err != nil {
		return err
	}
	if y.Buf == x.Buf || y.Buf == w.Buf {
		return fmt.Errorf("%s: output %q shares a buffer with an input; WebGPU forbids binding one buffer read-only and writable in a dispatch", what, y.Buf.Label)
	}
	k, err := o.kernel("norm.wgsl", entry, engine.Constants{"WG": u(normWG)})
	if err != nil {
		return err
	}
	return rec.Dispatch(k, words(normUniform{rows: uint32(rows), n: uint32(n), eps: eps}), engine.Grid(rows*normWG, normWG), x.Binding(), w.Binding(), y.Binding())
}

// RMSNorm records y = x / sqrt(mean(x²) + eps) * w for each of rows rows of
// n values; w holds n weights. y must not alias x.
func (o *Ops) RMSNorm(rec *engine.Recorder, x, w, y *engine.Tensor, rows, n int, eps float32) error {
	return o.rowwise("rmsnorm", rec, x, w, y, rows, n, eps)
}

// Softmax records the max-subtracted softmax of each of rows rows of n values.
func (o *Ops) Softmax(rec *engine.Recorder, x, y *engine.Tensor, rows, n int) error {
	return o.rowwise("softmax", rec, x, x, y, rows, n, 0)
}
