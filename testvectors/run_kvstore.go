package testvectors

import (
	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

func init() {
	register("kvstore", func(r *Run, v *Vector) (map[string][]float64, error) {
		var p shaders.KVSlots
		for name, dst := range map[string]*int{"T": &p.T, "rows": &p.Rows, "sink": &p.Sink, "cap": &p.Cap, "dim": &p.Dim} {
			n, err := v.Int(name)
			if err != nil {
				return nil, err
			}
			*dst = n
		}
		src, err := r.Input(v, "src")
		if err != nil {
			return nil, err
		}
		// the cache starts with the vector's contents, so rows the store must
		// leave alone are checked too
		cache, err := r.Input(v, "cache")
		if err != nil {
			return nil, err
		}
		return r.Submit(func(rec *engine.Recorder) error { return r.Ops.StoreKV(rec, src, cache, p) }, map[string]*engine.Tensor{"cache": cache})
	})
}
