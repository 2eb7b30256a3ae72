package ggml

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func randomFloats(rng *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32((rng.Float64()*2 - 1) * scale)
	}
	return x
}

func TestQuantizeRoundTripErrorBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const blocks = 200
	for _, typ := range []Type{Q8_0, Q4_0, Q4_1} {
		t.Run(typ.String(), func(t *testing.T) {
			for b := range blocks {
				scale := math.Ldexp(1, rng.IntN(16)-8)
				x := randomFloats(rng, QK, scale)
				if b%3 == 0 { // skewed blocks exercise Q4_1's minimum
					for i := range x {
						x[i] += float32(scale)
					}
				}
				enc, err := Quantize(typ, x)
				require.NoError(t, err)
				y, err := Dequantize(typ, enc, QK)
				require.NoError(t, err)
				bound := quantBounds(typ, x, enc)
				for i := range x {
					require.LessOrEqualf(t, math.Abs(float64(x[i])-float64(y[i])), bound[i],
						"block %d element %d: x=%g y=%g", b, i, x[i], y[i])
				}
			}
		})
	}
}

// quantBounds returns, per element, the largest error the quantizer may make,
// derived from its definition in float64: half a step (a full step for the
// Q4_0 element clipped at +7), plus what rounding the scale (and minimum) to
// f16 costs, plus float32 slack.
func quantBounds(typ Type, x []float32, enc []byte) []float64 {
	bound := make([]float64, len(x))
	d16 := refF16(binary.LittleEndian.Uint16(enc))
	switch typ {
	case Q8_0:
		var amax float64
		for _, v := range x {
			amax = max(amax, math.Abs(float64(v)))
		}
		d := amax / 127
		for i := range x {
			bound[i] = d/2 + 127*math.Abs(d-d16) + 1e-6*amax
		}
	case Q4_0:
		var m float64
		for _, v := range x {
			if math.Abs(float64(v)) > math.Abs(m) {
				m = float64(v)
			}
		}
		d := m / -8
		for i, v := range x {
			step := 0.5
			if float64(v)/d > 7.5 {
				step = 1
			}
			bound[i] = step*math.Abs(d) + 8*math.Abs(d-d16) + 1e-6*math.Abs(m)
		}
	case Q4_1:
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range x {
			lo, hi = min(lo, float64(v)), max(hi, float64(v))
		}
		d := (hi - lo) / 15
		m16 := refF16(binary.LittleEndian.Uint16(enc[2:]))
		for i := range x {
			bound[i] = d/2 + 15*math.Abs(d-d16) + math.Abs(lo-m16) + 1e-6*(math.Abs(hi)+math.Abs(lo))
		}
	}
	return bound
}

func TestQuantizeKnownBlocks(t *testing.T) {
	// Q4_0: -8..7 then zeros. The largest magnitude is -8, so d = 1 and each
	// value v is stored as v+8.
	x := make([]float32, 32)
	for j := range 16 {
		x[j] = float32(j - 8)
	}
	enc, err := Quantize(Q4_0, x)
	require.NoError(t, err)
	want := []byte{0x00, 0x3c}
	for j := range 16 {
		want = append(want, byte(j)|8<<4)
	}
	assert.Equal(t, want, enc)

	// Q4_1: 0..15 twice: d = 1, m = 0, q = x.
	for j := range 32 {
		x[j] = float32(j % 16)
	}
	enc, err = Quantize(Q4_1, x)
	require.NoError(t, err)
	want = []byte{0x00, 0x3c, 0x00, 0x00}
	for j := range 16 {
		want = append(want, byte(j)|byte(j)<<4)
	}
	assert.Equal(t, want, enc)

	// Q8_0: multiples of 0.5 up to 63.5 = 127*0.5 are exact; ties round away
	// from zero (0.25/0.5 = 0.5 -> 1).
	for j := range 32 {
		x[j] = float32(j-16) * 0.5
	}
	x[31] = 63.5
	enc, err = Quantize(Q8_0, x)
	require.NoError(t, err)
	y, err := Dequantize(Q8_0, enc, 32)
	require.NoError(t, err)
	assert.Equal(t, x, y)
	x[0] = 0.25
	enc, err = Quantize(Q8_0, x)
	require.NoError(t, err)
	assert.Equal(t, byte(1), enc[2])
	x[0] = -0.25
	enc, err = Quantize(Q8_0, x)
	require.NoError(t, err)
	assert.Equal(t, byte(0xff), enc[2])
}

func TestQuantizeZeroBlock(t *testing.T) {
	for _, typ := range []Type{Q8_0, Q4_0, Q4_1} {
		enc, err := Quantize(typ, make([]float32, 32))
		require.NoError(t, err)
		y, err := Dequantize(typ, enc, 32)
		require.NoError(t, err)
		assert.Equal(t, make([]float32, 32), y, typ)
	}
}

func TestQuantizeFloatTypes(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	x := randomFloats(rng, 100, 3)
	enc, err := Quantize(F32, x)
	require.NoError(t, err)
	y, err := Dequantize(F32, enc, len(x))
	require.NoError(t, err)
	assert.Equal(t, x, y)

	for _, c := range []struct {
		typ Type
		rel float64
	}{{F16, 1.0 / 2048}, {BF16, 1.0 / 256}} {
		enc, err := Quantize(c.typ, x)
		require.NoError(t, err)
		y, err := Dequantize(c.typ, enc, len(x))
		require.NoError(t, err)
		for i := range x {
			assert.InDelta(t, x[i], y[i], c.rel*math.Abs(float64(x[i]))+1e-7, c.typ)
		}
	}
}

func TestQuantizeRejects(t *testing.T) {
	_, err := Quantize(Q4_K, make([]float32, 256))
	assert.ErrorContains(t, err, "Q4_K")
	_, err = Quantize(Q8_0, make([]float32, 33))
	assert.Error(t, err)
}

func TestQuantizeNonFiniteDoesNotPanic(t *testing.T) {
	x := make([]float32, 32)
	x[3] = float32(math.NaN())
	x[7] = float32(math.Inf(1))
	for _, typ := range []Type{Q8_0, Q4_0, Q4_1, F16, BF16} {
		_, err := Quantize(typ, x)
		assert.NoError(t, err, typ)
	}
}
