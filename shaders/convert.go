package shaders

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

const convertWG = 64

// convertUniform is convert.wgsl's Params.
type convertUniform struct {
	n uint32 // elements
}

func (o *Ops) convert(entry string, rec *engine.Recorder, x, y *engine.Tensor, from, to engine.DType, n, invocations int) error {
	what := "convert." + entry
	if n < 1 {
		return fmt.Errorf("%s: n = %d, want at least 1", what, n)
	}
	if err := need(what, x, from, n); err != nil {
		return err
	}
	if err := need(what, y, to, n); err != nil {
		return err
	}
	k, err := o.kernel("convert.wgsl", entry, engine.Constants{"WG": u(convertWG)})
	if err != nil {
		return err
	}
	return rec.Dispatch(k, words(convertUniform{n: uint32(n)}), engine.Grid(invocations, convertWG), x.Binding(), y.Binding())
}

// F32ToF16 records y = f16(x) over n elements, rounding to nearest even
// (bit-exact on every adapter). For odd n the other half of y's last word
// is preserved.
func (o *Ops) F32ToF16(rec *engine.Recorder, x, y *engine.Tensor, n int) error {
	return o.convert("f32_to_f16", rec, x, y, engine.F32, engine.F16, n, (n+1)/2)
}

// F16ToF32 records y = f32(x) over n elements (exact).
func (o *Ops) F16ToF32(rec *engine.Recorder, x, y *engine.Tensor, n int) error {
	return o.convert("f16_to_f32", rec, x, y, engine.F16, engine.F32, n, n)
}
