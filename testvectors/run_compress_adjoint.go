package testvectors

import (
	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

func init() {
	register("compress_adjoint", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		L, m, C, r0y, r0x := a.int("L"), a.int("m"), a.int("C"), a.int("dy_row0"), a.int("dx_row0")
		dy, dx := a.in("dy"), a.inout("dx")
		if a.err != nil {
			return nil, a.err
		}
		var work [2]*engine.Tensor
		for i := range work {
			t, err := r.Dev.NewTensor("work", engine.F32, L, C)
			if err != nil {
				return nil, err
			}
			r.tmp = append(r.tmp, t)
			if err := Poison(t); err != nil {
				return nil, err
			}
			work[i] = t
		}
		scratch := a.scratch("scratch", shaders.CompressAdjointScratch(L, m, C))
		return a.submit(func(rec *engine.Recorder) error {
			return r.Ops.CompressAdjoint(rec, dy, r0y, dx, r0x, work[0], work[1], scratch, L, m, C)
		}, map[string]*engine.Tensor{"dx": dx})
	})
}
