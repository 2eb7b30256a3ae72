package shaders

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

// normBwdUniform is norm_bwd.wgsl's Params.
type normBwdUniform struct {
	rows, n uint32
	eps     float32
	acc     uint32 // 1: dx += ...
}

// RMSNormBackward records the gradients of y = x·r·w, r = 1/sqrt(mean(x²)+eps)
// per row (norm_bwd.wgsl): dx (+)= r·(dy∘w) − x·r³/n·Σ(dy∘w∘x) (accumulate
// adds into dx, e.g. the residual stream's gradient), and dw[n] += Σ over rows
// of dy∘x·r. inv is scratch f32 [rows] (it receives r). Outputs must not
// share buffers with inputs or each other.
func (o *Ops) RMSNormBackward(rec *engine.Recorder, x, w, dy, dx, dw, inv *engine.Tensor, rows, n int, eps float32, accumulate bool) error {
	const what = "rmsnorm backward"
	if rows < 1 || n < 1 {
		return fmt.Errorf("%s: rows = %d, n = %d, want both at least 1", what, rows, n)
	}
	if rows > maxWorkDim*maxWorkDim {
		return fmt.Errorf("%s: %d rows are too many", what, rows)
	}
	if rows > loopBudget || n > normMaxN {
		// the weight pass loops over every row (llvmpipe's loop cap, docs/webgpu.md)
		return fmt.Errorf("%s: %d rows of %d; at most %d rows (split the step) of at most %d", what, rows, n, loopBudget, normMaxN)
	}
	for _, c := range []struct {
		t    *engine.Tensor
		name string
		n    int
	}{{x, "x", rows * n}, {w, "w", n}, {dy, "dy", rows * n}, {dx, "dx", rows * n}, {dw, "dw", n}, {inv, "inv", rows}} {
		if err := need(what+" "+c.name, c.t, engine.F32, c.n); err != nil {
			return err
		}
	}
	outs := []*engine.Tensor{dx, dw, inv}
	for i, out := range outs {
		if err := distinct(what, out, append([]*engine.Tensor{x, w, dy}, outs[i+1:]...)...); err != nil {
			return err
		}
	}
	params := words(normBwdUniform{rows: uint32(rows), n: uint32(n), eps: eps, acc: b2u(accumulate)})
	bind := []engine.Binding{x.Binding(), w.Binding(), dy.Binding(), dx.Binding(), dw.Binding(), inv.Binding()}
	k, err := o.kernel("norm_bwd.wgsl", "rows", engine.Constants{"WG": u(normWG)})
	if err != nil {
		return err
	}
	if err := rec.Dispatch(k, params, engine.Grid(rows*normWG, normWG), bind...); err != nil {
		return err
	}
	k, err = o.kernel("norm_bwd.wgsl", "weight", engine.Constants{"WG": u(normWG)})
	if err != nil {
		return err
	}
	return rec.Dispatch(k, params, engine.Grid(n, normWG), bind...)
}
