package testvectors

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

// Runners of the DCT family (gen/dct.py states the semantics): dct2, dct3, compress
// (one matrix, no sinks or recent rows) and compress_cache (in place, with sinks, recent
// rows, several matrices, f32 or f16).
func init() {
	transform := func(inverse bool) Runner {
		return func(r *Run, v *Vector) (map[string][]float64, error) {
			L, err := v.Int("L")
			if err != nil {
				return nil, err
			}
			C, err := v.Int("C")
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
			scratch, err := dctScratch(r, shaders.DCTScratch(L, C, 0))
			if err != nil {
				return nil, err
			}
			return r.Submit(func(rec *engine.Recorder) error {
				if inverse {
					return r.Ops.DCT3(rec, x, y, scratch, L, C)
				}
				return r.Ops.DCT2(rec, x, y, scratch, L, C)
			}, map[string]*engine.Tensor{"y": y})
		}
	}
	register("dct2", transform(false))
	register("dct3", transform(true))

	register("compress", func(r *Run, v *Vector) (map[string][]float64, error) {
		var p shaders.CompressParams
		for name, dst := range map[string]*int{"L": &p.Span, "m": &p.Kept, "C": &p.Channels} {
			n, err := v.Int(name)
			if err != nil {
				return nil, err
			}
			*dst = n
		}
		if err := ablation(v, &p); err != nil {
			return nil, err
		}
		p.Batches, p.BatchStride = 1, p.Span
		// compressed in place in a copy of x; the m rows are then copied into the
		// poisoned output
		cache, err := r.Input(v, "x")
		if err != nil {
			return nil, err
		}
		y, err := r.Output(v, "y", engine.F32)
		if err != nil {
			return nil, err
		}
		scratch, err := dctScratch(r, shaders.CompressScratch(p, 0))
		if err != nil {
			return nil, err
		}
		return r.Submit(func(rec *engine.Recorder) error {
			if err := r.Ops.Compress(rec, cache, scratch, p); err != nil {
				return err
			}
			return rec.Copy(cache.Buf, cache.Offset, y.Buf, y.Offset, y.Bytes())
		}, map[string]*engine.Tensor{"y": y})
	})

	register("compress_cache", func(r *Run, v *Vector) (map[string][]float64, error) {
		var p shaders.CompressParams
		for name, dst := range map[string]*int{"S": &p.Sink, "L": &p.Span, "m": &p.Kept, "R": &p.Recent,
			"C": &p.Channels, "batches": &p.Batches, "stride": &p.BatchStride} {
			n, err := v.Int(name)
			if err != nil {
				return nil, err
			}
			*dst = n
		}
		if err := ablation(v, &p); err != nil {
			return nil, err
		}
		cache, err := r.Input(v, "cache")
		if err != nil {
			return nil, err
		}
		scratch, err := dctScratch(r, shaders.CompressScratch(p, 0))
		if err != nil {
			return nil, err
		}
		got, err := r.Submit(func(rec *engine.Recorder) error { return r.Ops.Compress(rec, cache, scratch, p) },
			map[string]*engine.Tensor{"cache": cache})
		if err != nil {
			return nil, err
		}
		all := got["cache"]
		rows := p.Sink + p.Kept + p.Recent
		y := make([]float64, 0, p.Batches*rows*p.Channels)
		for b := 0; b < p.Batches; b++ {
			start := b * p.BatchStride * p.Channels
			y = append(y, all[start:start+rows*p.Channels]...)
		}
		return map[string][]float64{"y": y}, nil
	})
}

// ablation reads the optional keep ("low" | "high") and scale ("amplitude" | "energy")
// parameters of a compression vector; absent, they are the method's low and amplitude.
func ablation(v *Vector, p *shaders.CompressParams) error {
	if keep, ok := v.Params["keep"]; ok {
		switch keep {
		case "low":
		case "high":
			p.KeepHigh = true
		default:
			return fmt.Errorf("vector %s: keep %v: want low or high", v.Name, keep)
		}
	}
	if scale, ok := v.Params["scale"]; ok {
		switch scale {
		case "amplitude":
		case "energy":
			p.EnergyScale = true
		default:
			return fmt.Errorf("vector %s: scale %v: want amplitude or energy", v.Name, scale)
		}
	}
	return nil
}

// dctScratch allocates an f32 scratch tensor of n elements for the run.
func dctScratch(r *Run, n int) (*engine.Tensor, error) {
	if n < 1 {
		return nil, fmt.Errorf("scratch of %d elements", n)
	}
	t, err := r.Dev.NewTensor("scratch", engine.F32, 1, n)
	if err != nil {
		return nil, err
	}
	r.tmp = append(r.tmp, t)
	return t, nil
}
