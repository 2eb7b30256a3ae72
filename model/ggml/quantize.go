package ggml

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Quantize encodes x as type t, for writing model files. Q8_0, Q4_0 and Q4_1
// follow ggml's reference quantizers (quantize_row_*_ref) step by step in
// float32, so they produce the same bytes; F16 and BF16 round to nearest even.
// len(x) must be a multiple of t's block size.
func Quantize(t Type, x []float32) ([]byte, error) {
	encode, ok := encoders[t]
	if !ok {
		return nil, fmt.Errorf("ggml: quantizing to %v is not supported", t)
	}
	size, err := RowBytes(t, len(x))
	if err != nil {
		return nil, err
	}
	out := make([]byte, size)
	bs, bb := t.BlockSize(), t.BlockBytes()
	for i := range len(x) / bs {
		encode(out[i*bb:(i+1)*bb], x[i*bs:(i+1)*bs])
	}
	return out, nil
}

// An encoder turns one block of elements into its bytes.
type encoder func(dst []byte, block []float32)

var encoders = map[Type]encoder{
	F32:  func(dst []byte, x []float32) { binary.LittleEndian.PutUint32(dst, math.Float32bits(x[0])) },
	F16:  func(dst []byte, x []float32) { binary.LittleEndian.PutUint16(dst, F32ToF16(x[0])) },
	BF16: func(dst []byte, x []float32) { binary.LittleEndian.PutUint16(dst, F32ToBF16(x[0])) },
	Q8_0: encodeQ8_0,
	Q4_0: encodeQ4_0,
	Q4_1: encodeQ4_1,
}

// CanQuantize reports whether Quantize supports t.
func (t Type) CanQuantize() bool {
	_, ok := encoders[t]
	return ok
}

func putF16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, F32ToF16(f)) }

// inverse returns 1/d, or 0 for an all-zero block, as ggml does. The scale
// used for quantizing is the float32 d, not its f16 rounding.
func inverse(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

// encodeQ8_0: d = max|x|/127, q = round(x/d) (halves away from zero).
func encodeQ8_0(dst []byte, x []float32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, abs32(v))
	}
	d := amax / 127
	id := inverse(d)
	putF16(dst, d)
	for j, v := range x {
		dst[2+j] = byte(truncInt8(float32(math.Round(float64(float32(v * id))))))
	}
}

// encodeQ4_0: d = -m/8 where m is the element of largest magnitude (so m
// maps to -8 exactly), q = min(15, trunc(x/d + 8.5)).
func encodeQ4_0(dst []byte, x []float32) {
	var amax, m float32
	for _, v := range x {
		if a := abs32(v); amax < a {
			amax, m = a, v
		}
	}
	d := m / -8
	id := inverse(d)
	putF16(dst, d)
	for j := range QK / 2 {
		q0 := min(15, truncInt8(float32(x[j]*id)+8.5))
		q1 := min(15, truncInt8(float32(x[j+QK/2]*id)+8.5))
		dst[2+j] = byte(q0)&0x0f | byte(q1)<<4
	}
}

// encodeQ4_1: d = (max-min)/15, m = min, q = min(15, trunc((x-min)/d + 0.5)).
func encodeQ4_1(dst []byte, x []float32) {
	lo, hi := float32(math.MaxFloat32), float32(-math.MaxFloat32)
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	d := (hi - lo) / 15
	id := inverse(d)
	putF16(dst, d)
	putF16(dst[2:], lo)
	for j := range QK / 2 {
		q0 := min(15, truncInt8(float32((x[j]-lo)*id)+0.5))
		q1 := min(15, truncInt8(float32((x[j+QK/2]-lo)*id)+0.5))
		dst[4+j] = byte(q0)&0x0f | byte(q1)<<4
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// truncInt8 is C's (int8_t) conversion for values in range: truncation toward
// zero. Out-of-range values (only from NaN or infinite input) clamp instead
// of being undefined.
func truncInt8(v float32) int8 {
	switch {
	case v >= 127:
		return 127
	case v > -128:
		return int8(v)
	default:
		return -128 // also NaN
	}
}
