package ggml

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Dequantize converts n elements of type t, stored in data, to float32.
// data must hold exactly the bytes of n elements (see RowBytes). Each block
// is decoded as ggml's dequantize_row_* does, in float32 arithmetic.
func Dequantize(t Type, data []byte, n int) ([]float32, error) {
	decode, ok := decoders[t]
	if !ok {
		return nil, fmt.Errorf("ggml: dequantizing %v is not supported", t)
	}
	size, err := RowBytes(t, n)
	if err != nil {
		return nil, err
	}
	if len(data) != size {
		return nil, fmt.Errorf("ggml: %d elements of %v need %d bytes, got %d", n, t, size, len(data))
	}
	dst := make([]float32, n)
	bs, bb := t.BlockSize(), t.BlockBytes()
	for i := range n / bs {
		decode(dst[i*bs:(i+1)*bs], data[i*bb:(i+1)*bb])
	}
	return dst, nil
}

// A decoder turns one block of bytes into its block of elements.
type decoder func(dst []float32, block []byte)

var decoders = map[Type]decoder{
	F32:    decodeF32,
	F16:    decodeF16,
	BF16:   decodeBF16,
	Q4_0:   decodeQ4_0,
	Q4_1:   decodeQ4_1,
	Q5_0:   decodeQ5_0,
	Q5_1:   decodeQ5_1,
	IQ4_NL: decodeIQ4_NL,
	Q8_0:   decodeQ8_0,
	Q4_K:   decodeQ4_K,
	Q5_K:   decodeQ5_K,
	Q6_K:   decodeQ6_K,
}

// CanDequantize reports whether Dequantize supports t.
func (t Type) CanDequantize() bool {
	_, ok := decoders[t]
	return ok
}

func f16At(b []byte) float32 { return F16ToF32(binary.LittleEndian.Uint16(b)) }

func decodeF32(dst []float32, b []byte) {
	dst[0] = math.Float32frombits(binary.LittleEndian.Uint32(b))
}

func decodeF16(dst []float32, b []byte) { dst[0] = f16At(b) }

func decodeBF16(dst []float32, b []byte) { dst[0] = BF16ToF32(binary.LittleEndian.Uint16(b)) }

// Q8_0: f16 scale d, then 32 int8 quants; x = q*d.
func decodeQ8_0(dst []float32, b []byte) {
	d := f16At(b)
	for j, q := range b[2 : 2+QK] {
		dst[j] = float32(int8(q)) * d
	}
}

// Q4_0: f16 scale d, then 16 bytes; the low nibbles are elements 0..15 and
// the high nibbles 16..31; x = (q-8)*d.
func decodeQ4_0(dst []float32, b []byte) {
	d := f16At(b)
	for j, q := range b[2 : 2+QK/2] {
		dst[j] = float32(int(q&0x0f)-8) * d
		dst[j+QK/2] = float32(int(q>>4)-8) * d
	}
}

// Q4_1: f16 scale d and f16 minimum m, then nibbles as in Q4_0; x = q*d + m.
func decodeQ4_1(dst []float32, b []byte) {
	d, m := f16At(b), f16At(b[2:])
	for j, q := range b[4 : 4+QK/2] {
		dst[j] = float32(float32(q&0x0f)*d) + m
		dst[j+QK/2] = float32(float32(q>>4)*d) + m
	}
}

// Q5_0: f16 scale d, a little-endian u32 qh, then nibbles as in Q4_0; bit j
// of qh is bit 4 of element j. x = (q-16)*d.
func decodeQ5_0(dst []float32, b []byte) {
	d := f16At(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	for j, q := range b[6 : 6+QK/2] {
		lo := int(q&0x0f) | int(qh>>j&1)<<4
		hi := int(q>>4) | int(qh>>(j+16)&1)<<4
		dst[j] = float32(lo-16) * d
		dst[j+QK/2] = float32(hi-16) * d
	}
}

// Q5_1: f16 scale d, f16 minimum m, u32 qh, nibbles; x = q*d + m, q as in Q5_0
// without the offset.
func decodeQ5_1(dst []float32, b []byte) {
	d, m := f16At(b), f16At(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	for j, q := range b[8 : 8+QK/2] {
		lo := q&0x0f | byte(qh>>j&1)<<4
		hi := q>>4 | byte(qh>>(j+16)&1)<<4
		dst[j] = float32(float32(lo)*d) + m
		dst[j+QK/2] = float32(float32(hi)*d) + m
	}
}

// IQ4NLValues is IQ4_NL's non-linear grid (ggml's kvalues_iq4nl).
var IQ4NLValues = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// IQ4_NL: f16 scale d, then nibbles as in Q4_0 indexing IQ4NLValues;
// x = d*value.
func decodeIQ4_NL(dst []float32, b []byte) {
	d := f16At(b)
	for j, q := range b[2 : 2+QK/2] {
		dst[j] = d * float32(IQ4NLValues[q&0x0f])
		dst[j+QK/2] = d * float32(IQ4NLValues[q>>4])
	}
}

// Q4_K super-block of 256: f16 d, f16 dmin, 12 bytes of packed 6-bit scales
// and mins for 8 sub-blocks of 32, then 128 bytes of nibbles. Each 32 bytes of
// nibbles hold two sub-blocks: low nibbles first, then high nibbles.
// x = d*scale*q - dmin*min.
func decodeQ4_K(dst []float32, b []byte) {
	d, dmin := f16At(b), f16At(b[2:])
	scales := b[4:16]
	qs := b[16 : 16+QKK/2]
	for k := range 4 { // 64 elements per pass: two sub-blocks
		sc1, m1 := scaleMinK4(2*k, scales)
		sc2, m2 := scaleMinK4(2*k+1, scales)
		d1, mm1 := d*float32(sc1), dmin*float32(m1)
		d2, mm2 := d*float32(sc2), dmin*float32(m2)
		q := qs[32*k : 32*k+32]
		out := dst[64*k : 64*k+64]
		for l := range 32 {
			out[l] = float32(d1*float32(q[l]&0x0f)) - mm1
			out[32+l] = float32(d2*float32(q[l]>>4)) - mm2
		}
	}
}

// Q5_K super-block of 256: f16 d, f16 dmin, 12 bytes of scales and mins as
// in Q4_K, 32 bytes qh, then 128 bytes of nibbles as in Q4_K. Element l of
// sub-block j adds 16 when bit j of qh[l] is set. x = d*scale*q - dmin*min.
func decodeQ5_K(dst []float32, b []byte) {
	d, dmin := f16At(b), f16At(b[2:])
	scales := b[4:16]
	qh := b[16:48]
	qs := b[48 : 48+QKK/2]
	for k := range 4 {
		sc1, m1 := scaleMinK4(2*k, scales)
		sc2, m2 := scaleMinK4(2*k+1, scales)
		d1, mm1 := d*float32(sc1), dmin*float32(m1)
		d2, mm2 := d*float32(sc2), dmin*float32(m2)
		q := qs[32*k : 32*k+32]
		out := dst[64*k : 64*k+64]
		for l := range 32 {
			lo := q[l]&0x0f | (qh[l]>>(2*k)&1)<<4
			hi := q[l]>>4 | (qh[l]>>(2*k+1)&1)<<4
			out[l] = float32(d1*float32(lo)) - mm1
			out[32+l] = float32(d2*float32(hi)) - mm2
		}
	}
}

// scaleMinK4 unpacks sub-block j's 6-bit scale and min (ggml's
// get_scale_min_k4): sub-blocks 0..3 keep them in the low 6 bits of bytes
// j and j+4; sub-blocks 4..7 split them into a nibble of byte j+4 and the
// top two bits of bytes j-4 and j.
func scaleMinK4(j int, q []byte) (scale, min uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// Q6_K super-block of 256: 128 bytes ql (low 4 bits), 64 bytes qh (high 2
// bits), 16 int8 scales (one per 16 elements), f16 d. x = d*scale*(q-32).
// Each half of 128 elements uses 64 bytes of ql and 32 of qh: element l
// (l < 32) of each quarter takes its low bits from ql[l] or ql[l+32] (low
// nibble for quarters 0,1, high for 2,3) and its high bits from qh[l] at
// bit 2*quarter.
func decodeQ6_K(dst []float32, b []byte) {
	ql := b[:QKK/2]
	qh := b[QKK/2 : QKK/2+QKK/4]
	sc := b[QKK/2+QKK/4 : QKK/2+QKK/4+QKK/16]
	d := f16At(b[QKK/2+QKK/4+QKK/16:])
	for half := range 2 {
		l4, h2, s := ql[64*half:], qh[32*half:], sc[8*half:]
		out := dst[128*half : 128*half+128]
		for l := range 32 {
			is := l / 16
			q1 := int(l4[l]&0x0f|(h2[l]>>0&3)<<4) - 32
			q2 := int(l4[l+32]&0x0f|(h2[l]>>2&3)<<4) - 32
			q3 := int(l4[l]>>4|(h2[l]>>4&3)<<4) - 32
			q4 := int(l4[l+32]>>4|(h2[l]>>6&3)<<4) - 32
			out[l] = float32(d*float32(int8(s[is]))) * float32(q1)
			out[l+32] = float32(d*float32(int8(s[is+2]))) * float32(q2)
			out[l+64] = float32(d*float32(int8(s[is+4]))) * float32(q3)
			out[l+96] = float32(d*float32(int8(s[is+6]))) * float32(q4)
		}
	}
}
