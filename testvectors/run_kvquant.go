package testvectors

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

func init() {
	register("kvquant", func(r *Run, v *Vector) (map[string][]float64, error) {
		var p shaders.QuantRows
		for name, dst := range map[string]*int{"T": &p.T, "rows": &p.Rows, "sink": &p.Sink, "cap": &p.Cap, "dim": &p.Dim,
			"batches": &p.Batches, "fstride": &p.F32Stride, "cstride": &p.CacheStride} {
			n, err := v.Int(name)
			if err != nil {
				return nil, err
			}
			*dst = n
		}
		if _, ok := v.Params["f32first"]; ok {
			n, err := v.Int("f32first")
			if err != nil {
				return nil, err
			}
			p.F32First = n
		}
		op, err := v.Str("op")
		if err != nil {
			return nil, err
		}
		cache, err := r.Input(v, "cache")
		if err != nil {
			return nil, err
		}
		switch op {
		case "store":
			src, err := r.Input(v, "src")
			if err != nil {
				return nil, err
			}
			return r.Submit(func(rec *engine.Recorder) error { return r.Ops.QuantizeKV(rec, src, cache, p) }, map[string]*engine.Tensor{"cache": cache})
		case "load":
			dst, err := r.Output(v, "dst", engine.F32)
			if err != nil {
				return nil, err
			}
			return r.Submit(func(rec *engine.Recorder) error { return r.Ops.DequantizeKV(rec, cache, dst, p) }, map[string]*engine.Tensor{"dst": dst})
		}
		return nil, fmt.Errorf("vector %s: op %q is neither store nor load", v.Name, op)
	})
}
