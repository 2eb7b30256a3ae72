package testvectors

import "github.com/freqkv/freqkv/engine"

func init() {
	binaryOp := func(launch func(r *Run) func(*engine.Recorder, *engine.Tensor, *engine.Tensor, *engine.Tensor, int) error) Runner {
		return func(r *Run, v *Vector) (map[string][]float64, error) {
			n, err := v.Int("n")
			if err != nil {
				return nil, err
			}
			a, err := r.Input(v, "a")
			if err != nil {
				return nil, err
			}
			b, err := r.Input(v, "b")
			if err != nil {
				return nil, err
			}
			out, err := r.Output(v, "out", engine.F32)
			if err != nil {
				return nil, err
			}
			return r.Submit(func(rec *engine.Recorder) error { return launch(r)(rec, a, b, out, n) }, map[string]*engine.Tensor{"out": out})
		}
	}
	register("add", binaryOp(func(r *Run) func(*engine.Recorder, *engine.Tensor, *engine.Tensor, *engine.Tensor, int) error {
		return r.Ops.Add
	}))
	register("swiglu", binaryOp(func(r *Run) func(*engine.Recorder, *engine.Tensor, *engine.Tensor, *engine.Tensor, int) error {
		return r.Ops.SwiGLU
	}))
	register("geglu", binaryOp(func(r *Run) func(*engine.Recorder, *engine.Tensor, *engine.Tensor, *engine.Tensor, int) error {
		return r.Ops.GeGLU
	}))
	// softcap reads a with the limit in the vector's "limit" parameter (b is unused).
	register("softcap", func(r *Run, v *Vector) (map[string][]float64, error) {
		n, err := v.Int("n")
		if err != nil {
			return nil, err
		}
		limit, err := v.Float("limit")
		if err != nil {
			return nil, err
		}
		a, err := r.Input(v, "a")
		if err != nil {
			return nil, err
		}
		out, err := r.Output(v, "out", engine.F32)
		if err != nil {
			return nil, err
		}
		return r.Submit(func(rec *engine.Recorder) error { return r.Ops.Softcap(rec, a, out, n, float32(limit)) }, map[string]*engine.Tensor{"out": out})
	})
}
