package shaders

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
)

const elementwiseWG = 64

// elementwiseUniform is elementwise.wgsl's Params.
type elementwiseUniform struct {
	n     uint32  // elements
	alpha float32 // the scale of Scale
}

func (o *Ops) binary(entry string, rec *engine.Recorder, a, b, out *engine.Tensor, n int, alpha float32) error {
	what := "elementwise." + entry
	for _, t := range []*engine.Tensor{a, b, out} {
		if err := need(what, t, engine.F32, n); err != nil {
			return err
		}
	}
	k, err := o.kernel("elementwise.wgsl", entry, engine.Constants{"WG": u(elementwiseWG)})
	if err != nil {
		return err
	}
	return rec.Dispatch(k, words(elementwiseUniform{n: uint32(n), alpha: alpha}), engine.Grid(n, elementwiseWG), a.Binding(), b.Binding(), out.Binding())
}

// Add records out = a + b over n elements; out must not alias a or b
// (WebGPU forbids one buffer bound read-only and writable in one dispatch).
func (o *Ops) Add(rec *engine.Recorder, a, b, out *engine.Tensor, n int) error {
	return o.binary("add", rec, a, b, out, n, 0)
}

// SwiGLU records out = silu(gate) * up over n elements.
func (o *Ops) SwiGLU(rec *engine.Recorder, gate, up, out *engine.Tensor, n int) error {
	return o.binary("swiglu", rec, gate, up, out, n, 0)
}

// GeGLU records out = gelu(gate) * up over n elements, GELU's tanh
// approximation (Gemma's gelu_pytorch_tanh, ggml's gelu).
func (o *Ops) GeGLU(rec *engine.Recorder, gate, up, out *engine.Tensor, n int) error {
	return o.binary("geglu", rec, gate, up, out, n, 0)
}

// Softcap records out = limit * tanh(x / limit) over n elements (Gemma 2's
// final-logit softcapping); limit must be positive.
func (o *Ops) Softcap(rec *engine.Recorder, x, out *engine.Tensor, n int, limit float32) error {
	if !(limit > 0) || math.IsInf(float64(limit), 0) {
		return fmt.Errorf("elementwise.softcap: limit %g is not a positive number", limit)
	}
	return o.binary("softcap", rec, x, x, out, n, limit)
}

// Scale records out = x * alpha.
func (o *Ops) Scale(rec *engine.Recorder, x, out *engine.Tensor, n int, alpha float32) error {
	return o.binary("scale", rec, x, x, out, n, alpha)
}
