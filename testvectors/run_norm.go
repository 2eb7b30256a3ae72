package testvectors

import "github.com/freqkv/freqkv/engine"

func init() {
	register("rmsnorm", func(r *Run, v *Vector) (map[string][]float64, error) {
		rows, err := v.Int("rows")
		if err != nil {
			return nil, err
		}
		n, err := v.Int("n")
		if err != nil {
			return nil, err
		}
		eps, err := v.Float("eps")
		if err != nil {
			return nil, err
		}
		x, err := r.Input(v, "x")
		if err != nil {
			return nil, err
		}
		w, err := r.Input(v, "w")
		if err != nil {
			return nil, err
		}
		y, err := r.Output(v, "y", engine.F32)
		if err != nil {
			return nil, err
		}
		return r.Submit(func(rec *engine.Recorder) error { return r.Ops.RMSNorm(rec, x, w, y, rows, n, float32(eps)) }, map[string]*engine.Tensor{"y": y})
	})
	register("softmax", func(r *Run, v *Vector) (map[string][]float64, error) {
		rows, err := v.Int("rows")
		if err != nil {
			return nil, err
		}
		n, err := v.Int("n")
		if err != nil {
			return nil, err
		}
		x, err := r.Input(v, "x")
		if err != nil {
			return nil, err
		}
		y, err := r.Output(v, "y", engine.F32)
		if err != nil {
			return nil, err
		}
		return r.Submit(func(rec *engine.Recorder) error { return r.Ops.Softmax(rec, x, y, rows, n) }, map[string]*engine.Tensor{"y": y})
	})
}
