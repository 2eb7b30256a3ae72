package shaders

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

const trainWG = 64

// axpyUniform is train_elementwise.wgsl's Params.
type axpyUniform struct {
	n, xoff, yoff uint32
	alpha, beta   float32
}

// fillUniform is fill.wgsl's Params.
type fillUniform struct {
	n, yoff uint32
	value   float32
}

// swigluBwdUniform is swiglu_bwd.wgsl's Params.
type swigluBwdUniform struct {
	n uint32
}

// Axpy records y[yOff+i] = beta·y[yOff+i] + alpha·x[xOff+i] for i < n
// (offsets in elements; beta == 0 never reads y). x and y must be
// different buffers.
func (o *Ops) Axpy(rec *engine.Recorder, x *engine.Tensor, xOff int, y *engine.Tensor, yOff int, n int, alpha, beta float32) error {
	if n < 1 || xOff < 0 || yOff < 0 {
		return fmt.Errorf("axpy: n = %d, offsets %d and %d: want n >= 1 and offsets >= 0", n, xOff, yOff)
	}
	if err := need("axpy x", x, engine.F32, xOff+n); err != nil {
		return err
	}
	if err := need("axpy y", y, engine.F32, yOff+n); err != nil {
		return err
	}
	if err := distinct("axpy", y, x); err != nil {
		return err
	}
	k, err := o.kernel("train_elementwise.wgsl", "axpy", engine.Constants{"WG": u(trainWG)})
	if err != nil {
		return err
	}
	return rec.Dispatch(k, words(axpyUniform{n: uint32(n), xoff: uint32(xOff), yoff: uint32(yOff), alpha: alpha, beta: beta}),
		engine.Grid(n, trainWG), x.Binding(), y.Binding())
}

// Fill records y[yOff+i] = value for i < n.
func (o *Ops) Fill(rec *engine.Recorder, y *engine.Tensor, yOff, n int, value float32) error {
	if n < 1 || yOff < 0 {
		return fmt.Errorf("fill: n = %d, offset %d: want n >= 1 and offset >= 0", n, yOff)
	}
	if err := need("fill", y, engine.F32, yOff+n); err != nil {
		return err
	}
	k, err := o.kernel("fill.wgsl", "fill", engine.Constants{"WG": u(trainWG)})
	if err != nil {
		return err
	}
	return rec.Dispatch(k, words(fillUniform{n: uint32(n), yoff: uint32(yOff), value: value}), engine.Grid(n, trainWG), y.Binding())
}

// SwiGLUBackward records the gradients of h = silu(gate)·up for n elements:
// dgate = dh·up·σ(g)·(1 + g·(1 − σ(g))), dup = dh·silu(g) (both overwritten).
func (o *Ops) SwiGLUBackward(rec *engine.Recorder, gate, up, dh, dgate, dup *engine.Tensor, n int) error {
	if n < 1 {
		return fmt.Errorf("swiglu backward: n = %d, want >= 1", n)
	}
	for _, t := range []*engine.Tensor{gate, up, dh, dgate, dup} {
		if err := need("swiglu backward", t, engine.F32, n); err != nil {
			return err
		}
	}
	for _, out := range []*engine.Tensor{dgate, dup} {
		if err := distinct("swiglu backward", out, gate, up, dh); err != nil {
			return err
		}
	}
	if dgate.Buf == dup.Buf {
		return fmt.Errorf("swiglu backward: dgate and dup share buffer %q", dup.Buf.Label)
	}
	k, err := o.kernel("swiglu_bwd.wgsl", "swiglu_bwd", engine.Constants{"WG": u(trainWG)})
	if err != nil {
		return err
	}
	return rec.Dispatch(k, words(swigluBwdUniform{n: uint32(n)}), engine.Grid(n, trainWG),
		gate.Binding(), up.Binding(), dh.Binding(), dgate.Binding(), dup.Binding())
}
