package testvectors

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

func init() {
	register("adamw", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		n := a.int("n")
		p := shaders.AdamWParams{LR: a.float("lr"), Beta1: a.float("b1"), Beta2: a.float("b2"), Eps: a.float("eps"),
			WeightDecay: a.float("wd"), Step: a.int("step"), GradScale: a.float("gscale"), ZeroGrad: a.flag("zero_grad")}
		param, grad, m, vv, clip := a.inout("param"), a.inout("grad"), a.inout("m"), a.inout("v"), a.in("clip")
		return a.submit(func(rec *engine.Recorder) error { return r.Ops.AdamW(rec, param, grad, m, vv, clip, n, p) },
			map[string]*engine.Tensor{"param": param, "grad": grad, "m": m, "v": vv})
	})
	register("gradnorm", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		k, maxNorm := a.int("tensors"), a.float("max_norm")
		gs := make([]*engine.Tensor, k)
		slots := 0
		for i := range gs {
			gs[i] = a.in(fmt.Sprintf("g%d", i))
			if gs[i] != nil {
				slots += shaders.SumSquaresSlots(gs[i].Rows * gs[i].Cols)
			}
		}
		partials, out := a.scratch("partials", slots), a.out("out")
		return a.submit(func(rec *engine.Recorder) error {
			next := 0
			for _, g := range gs {
				var err error
				if next, err = r.Ops.SumSquares(rec, g, g.Rows*g.Cols, partials, next); err != nil {
					return err
				}
			}
			return r.Ops.GradNormFinish(rec, partials, next, maxNorm, out)
		}, map[string]*engine.Tensor{"out": out})
	})
}
