package testvectors

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

func init() {
	register("matmul_bwd_x", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		m, n, k, chunk, acc := a.int("M"), a.int("N"), a.int("K"), a.int("chunk_rows"), a.flag("accumulate")
		dy, dx := a.in("dy"), a.inout("dx")
		if a.err != nil {
			return nil, a.err
		}
		w, err := r.Weight(v, "w", chunk)
		if err != nil {
			return nil, err
		}
		if w.Rows != n || w.Cols != k {
			return nil, fmt.Errorf("vector %s: w is [%d,%d], params say N=%d K=%d", v.Name, w.Rows, w.Cols, n, k)
		}
		return a.submit(func(rec *engine.Recorder) error { return r.Ops.MatMulBackwardX(rec, dy, w, dx, m, acc) }, map[string]*engine.Tensor{"dx": dx})
	})
	register("matmul_bwd_w", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		m, row0, ldy := a.int("M"), a.opt("row0"), a.opt("ldy")
		dy, x, dw := a.in("dy"), a.in("x"), a.inout("dw")
		return a.submit(func(rec *engine.Recorder) error { return r.Ops.MatMulBackwardWPart(rec, dy, x, dw, m, row0, ldy) },
			map[string]*engine.Tensor{"dw": dw})
	})
	register("lora_fwd", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		m, rank, scale := a.int("M"), a.int("rank"), a.float("scale")
		x, la, lb, u, y := a.in("x"), a.in("a"), a.in("b"), a.out("u"), a.inout("y")
		return a.submit(func(rec *engine.Recorder) error { return r.Ops.LoRAForward(rec, x, la, lb, u, y, m, rank, scale) },
			map[string]*engine.Tensor{"u": u, "y": y})
	})
	register("lora_bwd", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		m, rank, scale := a.int("M"), a.int("rank"), a.float("scale")
		x, u, dy, la, lb := a.in("x"), a.in("u"), a.in("dy"), a.in("a"), a.in("b")
		da, db, du, dx := a.inout("da"), a.inout("db"), a.out("du"), a.inout("dx")
		return a.submit(func(rec *engine.Recorder) error {
			return r.Ops.LoRABackward(rec, x, u, dy, la, lb, da, db, du, dx, m, rank, scale)
		}, map[string]*engine.Tensor{"da": da, "db": db, "du": du, "dx": dx})
	})
}
