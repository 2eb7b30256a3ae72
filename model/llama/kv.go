package llama

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/model/ggml"
)

// ReadKV reads a layer's cached keys (before RoPE) and values, rows in
// cache order, as float32. For analysis (spectrum) and tests.
func (c *Context) ReadKV(layer int) (keys, values [][]float32, err error) {
	if layer < 0 || layer >= c.m.H.Layers {
		return nil, nil, fmt.Errorf("layer %d out of range [0, %d)", layer, c.m.H.Layers)
	}
	v := c.Cache.LayerView(layer)
	rows := min(v.Rows, v.Cap)
	if v.Window > 0 && v.Rows > v.Cap {
		return nil, nil, fmt.Errorf("the window cache has wrapped; read it before %d tokens", v.Cap)
	}
	read := func(t *engine.Tensor) ([][]float32, error) {
		rb, err := t.DType.RowBytes(t.Cols)
		if err != nil {
			return nil, err
		}
		b, err := t.Buf.Read(t.Offset, rb*uint64(rows))
		if err != nil {
			return nil, err
		}
		out := make([][]float32, rows)
		if t.DType == engine.Q8_0 || t.DType == engine.Q4_0 {
			gt := map[engine.DType]ggml.Type{engine.Q8_0: ggml.Q8_0, engine.Q4_0: ggml.Q4_0}[t.DType]
			f, err := ggml.Dequantize(gt, b, rows*t.Cols)
			if err != nil {
				return nil, err
			}
			for r := range out {
				out[r] = f[r*t.Cols : (r+1)*t.Cols]
			}
			return out, nil
		}
		for r := range out {
			out[r] = make([]float32, t.Cols)
			for i := range out[r] {
				j := r*t.Cols + i
				if t.DType == engine.F16 {
					out[r][i] = ggml.F16ToF32(binary.LittleEndian.Uint16(b[2*j:]))
				} else {
					out[r][i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
				}
			}
		}
		return out, nil
	}
	if keys, err = read(c.Cache.K(layer)); err != nil {
		return nil, nil, err
	}
	values, err = read(c.Cache.V(layer))
	return keys, values, err
}
