package testvectors

import (
	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

func init() {
	register("rope", func(r *Run, v *Vector) (map[string][]float64, error) {
		var p shaders.RopeParams
		var neox, inverse int
		for name, dst := range map[string]*int{"rows": &p.Rows, "heads": &p.Heads, "head_dim": &p.HeadDim, "rope_dim": &p.RopeDim, "neox": &neox, "inverse": &inverse} {
			n, err := v.Int(name)
			if err != nil {
				return nil, err
			}
			*dst = n
		}
		p.NeoX, p.Inverse = neox != 0, inverse != 0
		var err error
		if p.Base, err = v.Float("base"); err != nil {
			return nil, err
		}
		if p.Scale, err = v.Float("scale"); err != nil {
			return nil, err
		}
		x, err := r.Input(v, "x")
		if err != nil {
			return nil, err
		}
		pos, err := r.Input(v, "pos")
		if err != nil {
			return nil, err
		}
		y, err := r.Output(v, "y", engine.F32)
		if err != nil {
			return nil, err
		}
		return r.Submit(func(rec *engine.Recorder) error { return r.Ops.Rope(rec, x, pos, y, p) }, map[string]*engine.Tensor{"y": y})
	})
}
