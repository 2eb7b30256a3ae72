package testvectors

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

func init() {
	register("attention", attentionRunner(false))
	register("attention_mass", attentionRunner(true))
}

// attentionRunner runs Attention, or with mass AttentionMass, whose mass tensor starts as
// the input mass0 and is read back as the output mass.
func attentionRunner(withMass bool) func(r *Run, v *Vector) (map[string][]float64, error) {
	return func(r *Run, v *Vector) (map[string][]float64, error) {
		var p shaders.AttentionParams
		var neox, maxPos int
		for name, dst := range map[string]*int{
			"T": &p.T, "heads": &p.Heads, "kv_heads": &p.KVHeads, "head_dim": &p.HeadDim, "rope_dim": &p.RopeDim,
			"neox": &neox, "rows": &p.Rows, "sink": &p.Sink, "window": &p.Window, "cap": &p.Cap, "max_pos": &maxPos,
		} {
			n, err := v.Int(name)
			if err != nil {
				return nil, err
			}
			*dst = n
		}
		p.NeoX = neox != 0
		scale, err := v.Float("scale")
		if err != nil {
			return nil, err
		}
		p.Scale = float32(scale)
		if _, ok := v.Params["softcap"]; ok {
			c, err := v.Float("softcap")
			if err != nil {
				return nil, err
			}
			p.Softcap = float32(c)
		}
		base, err := v.Float("base")
		if err != nil {
			return nil, err
		}
		ropeScale, err := v.Float("rope_scale")
		if err != nil {
			return nil, err
		}
		q, err := r.Input(v, "q")
		if err != nil {
			return nil, err
		}
		k, err := r.Input(v, "k")
		if err != nil {
			return nil, err
		}
		val, err := r.Input(v, "v")
		if err != nil {
			return nil, err
		}
		rope, err := temp(r, "rope", engine.F32, maxPos, p.RopeDim)
		if err != nil {
			return nil, err
		}
		if err := rope.UploadF32(shaders.RopeTable(maxPos, p.RopeDim, base, ropeScale)); err != nil {
			return nil, err
		}
		n := shaders.AttentionScratch(p)
		if n == 0 {
			return nil, fmt.Errorf("vector %s: invalid attention parameters %+v", v.Name, p)
		}
		scratch, err := temp(r, "scratch", engine.F32, 1, n)
		if err != nil {
			return nil, err
		}
		if err := Poison(scratch); err != nil {
			return nil, err
		}
		out, err := r.Output(v, "out", engine.F32)
		if err != nil {
			return nil, err
		}
		if !withMass {
			return r.Submit(func(rec *engine.Recorder) error { return r.Ops.Attention(rec, q, k, val, rope, out, scratch, p) }, map[string]*engine.Tensor{"out": out})
		}
		mass, err := r.Input(v, "mass0")
		if err != nil {
			return nil, err
		}
		return r.Submit(func(rec *engine.Recorder) error {
			return r.Ops.AttentionMass(rec, q, k, val, rope, out, scratch, mass, p)
		}, map[string]*engine.Tensor{"out": out, "mass": mass})
	}
}

// temp allocates a tensor the run releases after the vector.
func temp(r *Run, label string, dt engine.DType, rows, cols int) (*engine.Tensor, error) {
	t, err := r.Dev.NewTensor(label, dt, rows, cols)
	if err != nil {
		return nil, err
	}
	r.tmp = append(r.tmp, t)
	return t, nil
}
