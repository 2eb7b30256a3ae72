package testvectors

import "github.com/freqkv/freqkv/engine"

func init() {
	register("argmax", func(r *Run, v *Vector) (map[string][]float64, error) {
		n, err := v.Int("n")
		if err != nil {
			return nil, err
		}
		x, err := r.Input(v, "x")
		if err != nil {
			return nil, err
		}
		index, err := r.Output(v, "index", engine.U32)
		if err != nil {
			return nil, err
		}
		return r.Submit(func(rec *engine.Recorder) error { return r.Ops.Argmax(rec, x, index, n) }, map[string]*engine.Tensor{"index": index})
	})
}
