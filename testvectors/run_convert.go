package testvectors

import "github.com/freqkv/freqkv/engine"

func init() {
	convert := func(to engine.DType, launch func(o *Run) func(*engine.Recorder, *engine.Tensor, *engine.Tensor, int) error) Runner {
		return func(r *Run, v *Vector) (map[string][]float64, error) {
			n, err := v.Int("n")
			if err != nil {
				return nil, err
			}
			x, err := r.Input(v, "x")
			if err != nil {
				return nil, err
			}
			y, err := r.Output(v, "y", to)
			if err != nil {
				return nil, err
			}
			return r.Submit(func(rec *engine.Recorder) error { return launch(r)(rec, x, y, n) }, map[string]*engine.Tensor{"y": y})
		}
	}
	register("f32_to_f16", convert(engine.F16, func(r *Run) func(*engine.Recorder, *engine.Tensor, *engine.Tensor, int) error {
		return r.Ops.F32ToF16
	}))
	register("f16_to_f32", convert(engine.F32, func(r *Run) func(*engine.Recorder, *engine.Tensor, *engine.Tensor, int) error {
		return r.Ops.F16ToF32
	}))
}
