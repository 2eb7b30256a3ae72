package testvectors

import (
	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

func init() {
	register("rmsnorm_bwd", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		rows, n, eps, acc := a.int("rows"), a.int("n"), a.float("eps"), a.flag("accumulate")
		x, w, dy, dx, dw := a.in("x"), a.in("w"), a.in("dy"), a.inout("dx"), a.inout("dw")
		inv := a.scratch("inv", rows)
		return a.submit(func(rec *engine.Recorder) error {
			return r.Ops.RMSNormBackward(rec, x, w, dy, dx, dw, inv, rows, n, eps, acc)
		}, map[string]*engine.Tensor{"dx": dx, "dw": dw})
	})
	// The gradient of a rotation is the inverse rotation: the forward kernel with Inverse.
	register("rope_bwd", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		p := shaders.RopeParams{Rows: a.int("rows"), Heads: a.int("heads"), HeadDim: a.int("head_dim"), RopeDim: a.int("rope_dim"),
			Base: float64(a.float("base")), Scale: float64(a.float("scale")), NeoX: a.flag("neox"), Inverse: true}
		dy, pos, dx := a.in("dy"), a.in("pos"), a.out("dx")
		return a.submit(func(rec *engine.Recorder) error { return r.Ops.Rope(rec, dy, pos, dx, p) }, map[string]*engine.Tensor{"dx": dx})
	})
}
