package testvectors

import "github.com/freqkv/freqkv/engine"

func init() {
	register("nll", func(r *Run, v *Vector) (map[string][]float64, error) {
		rows, err := v.Int("rows")
		if err != nil {
			return nil, err
		}
		vocab, err := v.Int("vocab")
		if err != nil {
			return nil, err
		}
		logits, err := r.Input(v, "logits")
		if err != nil {
			return nil, err
		}
		targets, err := r.Input(v, "targets")
		if err != nil {
			return nil, err
		}
		nll, err := r.Output(v, "nll", engine.F32)
		if err != nil {
			return nil, err
		}
		return r.Submit(func(rec *engine.Recorder) error { return r.Ops.NLL(rec, logits, targets, nll, rows, vocab) }, map[string]*engine.Tensor{"nll": nll})
	})
}
