package shaders

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
)

const (
	optimWG    = 64
	sumsqChunk = 64 * 64 // elements per partial sum
)

// SumSquaresSlots is the number of partial sums SumSquares writes for n elements.
func SumSquaresSlots(n int) int { return ceilDiv(n, sumsqChunk) }

// gradnormUniform is gradnorm.wgsl's Params (both entry points).
type gradnormUniform struct {
	n       uint32 // values (sumsq) or partial slots (clip)
	slot    uint32 // first partial slot this call writes (sumsq)
	maxNorm float32
}

// adamwUniform is adamw.wgsl's Params.
type adamwUniform struct {
	n                   uint32
	lr, b1, b2, eps, wd float32
	bc1, bc2            float32 // bias corrections 1 - beta^step
	gscale              float32 // gradient scale
	zeroGrad            uint32  // 1: zero the gradient after the update
}

// SumSquares records the partial sums of g[0:n]² into partials[slot:next]
// (gradnorm.wgsl) and returns next, the first free slot. Call it for every
// gradient tensor, then GradNormFinish over partials[0:next].
func (o *Ops) SumSquares(rec *engine.Recorder, g *engine.Tensor, n int, partials *engine.Tensor, slot int) (int, error) {
	const what = "sum of squares"
	if n < 1 || slot < 0 {
		return slot, fmt.Errorf("%s: n = %d, slot = %d: want n >= 1, slot >= 0", what, n, slot)
	}
	next := slot + SumSquaresSlots(n)
	if err := need(what+" g", g, engine.F32, n); err != nil {
		return slot, err
	}
	if err := need(what+" partials", partials, engine.F32, next); err != nil {
		return slot, err
	}
	if err := distinct(what, partials, g); err != nil {
		return slot, err
	}
	k, err := o.kernel("gradnorm.wgsl", "sumsq", engine.Constants{"WG": u(optimWG), "CHUNK": u(sumsqChunk)})
	if err != nil {
		return slot, err
	}
	if err := rec.Dispatch(k, words(gradnormUniform{n: uint32(n), slot: uint32(slot)}), engine.Grid(SumSquaresSlots(n)*optimWG, optimWG), g.Binding(), partials.Binding()); err != nil {
		return slot, err
	}
	return next, nil
}

// GradNormFinish records out[0] = sqrt(Σ partials[0:slots]) (the global
// gradient norm) and out[1] = the clip scale min(1, maxNorm/(norm+1e-6)),
// or 1 when maxNorm <= 0. out (f32, 2 elements) is what AdamW's clip reads.
func (o *Ops) GradNormFinish(rec *engine.Recorder, partials *engine.Tensor, slots int, maxNorm float32, out *engine.Tensor) error {
	const what = "grad norm"
	if slots < 1 {
		return fmt.Errorf("%s: %d partial sums, want >= 1", what, slots)
	}
	if err := need(what+" partials", partials, engine.F32, slots); err != nil {
		return err
	}
	if err := need(what+" out", out, engine.F32, 2); err != nil {
		return err
	}
	if err := distinct(what, out, partials); err != nil {
		return err
	}
	k, err := o.kernel("gradnorm.wgsl", "finish", engine.Constants{"WG": u(optimWG), "CHUNK": u(sumsqChunk)})
	if err != nil {
		return err
	}
	return rec.Dispatch(k, words(gradnormUniform{n: uint32(slots), maxNorm: maxNorm}), [3]uint32{1, 1, 1}, partials.Binding(), out.Binding())
}

// AdamWParams are one AdamW step's hyperparameters.
type AdamWParams struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	Step                               int     // 1-based; bias corrections 1-β^Step in float64 on the host
	GradScale                          float32 // multiplies the gradient before the clip (e.g. 1/accumulation steps); 0 means 1
	ZeroGrad                           bool    // write 0 into grad after reading it
}

// AdamW records one AdamW step over n elements (adamw.wgsl): with
// g = grad·GradScale·clip[1], m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g²,
// param −= LR·(m/(1−β1^t) / (sqrt(v/(1−β2^t)) + Eps) + WeightDecay·param).
// clip is f32 [2] as GradNormFinish writes it (Fill it with 1 not to clip).
// param, grad, m, v and clip need five buffers.
func (o *Ops) AdamW(rec *engine.Recorder, param, grad, m, v, clip *engine.Tensor, n int, p AdamWParams) error {
	const what = "adamw"
	if n < 1 || p.Step < 1 {
		return fmt.Errorf("%s: n = %d, step = %d: want both >= 1", what, n, p.Step)
	}
	if !(p.Beta1 >= 0 && p.Beta1 < 1 && p.Beta2 >= 0 && p.Beta2 < 1 && p.Eps > 0 && p.LR >= 0 && p.WeightDecay >= 0) {
		return fmt.Errorf("%s: lr %g, betas %g/%g, eps %g, weight decay %g: want 0 <= beta < 1, eps > 0, lr and decay >= 0", what, p.LR, p.Beta1, p.Beta2, p.Eps, p.WeightDecay)
	}
	if err := needAll(what, []namedTensor{{param, "param", n}, {grad, "grad", n}, {m, "m", n}, {v, "v", n}, {clip, "clip", 2}}); err != nil {
		return err
	}
	bufs := map[*engine.Buffer]bool{param.Buf: true, grad.Buf: true, m.Buf: true, v.Buf: true, clip.Buf: true}
	if len(bufs) != 5 {
		return fmt.Errorf("%s: param, grad, m, v and clip need five different buffers", what)
	}
	gs := p.GradScale
	if gs == 0 {
		gs = 1
	}
	bc1 := 1 - math.Pow(float64(p.Beta1), float64(p.Step))
	bc2 := 1 - math.Pow(float64(p.Beta2), float64(p.Step))
	if bc1 == 0 || bc2 == 0 {
		return fmt.Errorf("%s: bias corrections 1-beta^%d round to 0", what, p.Step)
	}
	k, err := o.kernel("adamw.wgsl", "adamw", engine.Constants{"WG": u(optimWG)})
	if err != nil {
		return err
	}
	params := words(adamwUniform{n: uint32(n), lr: p.LR, b1: p.Beta1, b2: p.Beta2, eps: p.Eps, wd: p.WeightDecay,
		bc1: float32(bc1), bc2: float32(bc2), gscale: gs, zeroGrad: b2u(p.ZeroGrad)})
	return rec.Dispatch(k, params, engine.Grid(n, optimWG), param.Binding(), grad.Binding(), m.Binding(), v.Binding(), clip.Binding())
}
