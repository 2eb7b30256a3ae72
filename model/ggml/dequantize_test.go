package ggml

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The references below decode one element at a time from its index, written
// from the GGUF block definitions rather than from the loops in ggml, in
// float64.

func le16(b []byte, off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }

func refQ8_0(b []byte, i int) float64 {
	return refF16(le16(b, 0)) * float64(int8(b[2+i]))
}

// Q4_0 and Q4_1: element i < 16 is the low nibble of byte i, element i >= 16
// the high nibble of byte i-16.
func nibble32(qs []byte, i int) int {
	if i < 16 {
		return int(qs[i] & 0xf)
	}
	return int(qs[i-16] >> 4)
}

func refQ4_0(b []byte, i int) float64 {
	return refF16(le16(b, 0)) * float64(nibble32(b[2:], i)-8)
}

func refQ4_1(b []byte, i int) float64 {
	return refF16(le16(b, 0))*float64(nibble32(b[4:], i)) + refF16(le16(b, 2))
}

// Q5_0 and Q5_1: d (and m), qh u32, qs[16]; element i has the nibble of Q4_0's layout plus
// 16 * bit i of qh.
func q5(b []byte, qhAt, i int) int {
	qh := uint32(b[qhAt]) | uint32(b[qhAt+1])<<8 | uint32(b[qhAt+2])<<16 | uint32(b[qhAt+3])<<24
	return nibble32(b[qhAt+4:], i) + 16*int(qh>>i%2)
}

func refQ5_0(b []byte, i int) float64 { return refF16(le16(b, 0)) * float64(q5(b, 2, i)-16) }

func refQ5_1(b []byte, i int) float64 {
	return refF16(le16(b, 0))*float64(q5(b, 4, i)) + refF16(le16(b, 2))
}

// IQ4_NL: d, qs[16] indexing llama.cpp's grid, written out again here.
func refIQ4_NL(b []byte, i int) float64 {
	grid := []float64{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}
	return refF16(le16(b, 0)) * grid[nibble32(b[2:], i)]
}

// Q4_K: d, dmin, scales[12], qs[128]. Sub-block j = i/32 of 8. The 6-bit
// scale and min of sub-blocks 0..3 are bits 0..5 of scales[j] and
// scales[j+4]; those of sub-blocks 4..7 have their low 4 bits in the low and
// high nibbles of scales[j+4] and their top 2 bits in bits 6..7 of
// scales[j-4] and scales[j]. Sub-blocks 2k and 2k+1 share qs[32k:32k+32],
// low nibbles for the even one.
func refQ4_K(b []byte, i int) float64 {
	d, dmin := refF16(le16(b, 0)), refF16(le16(b, 2))
	sc := b[4:16]
	qs := b[16:]
	j, l := i/32, i%32
	var scale, mn int
	if j < 4 {
		scale, mn = int(sc[j]%64), int(sc[j+4]%64)
	} else {
		scale = int(sc[j+4]%16) + 16*int(sc[j-4]/64)
		mn = int(sc[j+4]/16) + 16*int(sc[j]/64)
	}
	q := int(qs[32*(j/2)+l])
	if j%2 == 0 {
		q %= 16
	} else {
		q /= 16
	}
	return d*float64(scale)*float64(q) - dmin*float64(mn)
}

// Q5_K: d, dmin, scales[12] as in Q4_K, qh[32], qs[128] as in Q4_K; element
// i = 32j + l has the nibble of Q4_K's layout plus 16 when bit j of qh[l] is set.
func refQ5_K(b []byte, i int) float64 {
	d, dmin := refF16(le16(b, 0)), refF16(le16(b, 2))
	sc, qh, qs := b[4:16], b[16:48], b[48:]
	j, l := i/32, i%32
	var scale, mn int
	if j < 4 {
		scale, mn = int(sc[j]%64), int(sc[j+4]%64)
	} else {
		scale = int(sc[j+4]%16) + 16*int(sc[j-4]/64)
		mn = int(sc[j+4]/16) + 16*int(sc[j]/64)
	}
	q := int(qs[32*(j/2)+l])
	if j%2 == 0 {
		q %= 16
	} else {
		q /= 16
	}
	q += 16 * (int(qh[l]) >> j % 2)
	return d*float64(scale)*float64(q) - dmin*float64(mn)
}

// Q6_K: ql[128], qh[64], scales[16] int8, d. Element i lies in half i/128;
// inside it, quarter r/32 and lane l = r%32. Its low 4 bits are the low
// (quarters 0,1) or high (quarters 2,3) nibble of ql[64*half + l + 32*(quarter%2)],
// its high 2 bits are bits 2*quarter of qh[32*half + l], and its scale is
// scales[8*half + 2*quarter + l/16].
func refQ6_K(b []byte, i int) float64 {
	ql, qh, scales := b[0:128], b[128:192], b[192:208]
	d := refF16(le16(b, 208))
	half, r := i/128, i%128
	quarter, l := r/32, r%32
	lowByte := int(ql[64*half+l+32*(quarter%2)])
	low := lowByte % 16
	if quarter >= 2 {
		low = lowByte / 16
	}
	high := int(qh[32*half+l]) >> (2 * quarter) % 4
	q := low + 16*high - 32
	scale := float64(int8(scales[8*half+2*quarter+l/16]))
	return d * scale * float64(q)
}

// randomScale returns the bits of a random finite, non-zero f16 of moderate
// magnitude, so that products stay far from overflow.
func randomScale(rng *rand.Rand) uint16 {
	exp := uint16(rng.IntN(20) + 3) // 2^-12 .. 2^7
	return uint16(rng.IntN(2))<<15 | exp<<10 | uint16(rng.IntN(1024))
}

type refCase struct {
	typ     Type
	ref     func(block []byte, i int) float64
	scaleAt []int // byte offsets of f16 scales to make finite
}

var refCases = []refCase{
	{Q8_0, refQ8_0, []int{0}},
	{Q4_0, refQ4_0, []int{0}},
	{Q4_1, refQ4_1, []int{0, 2}},
	{Q5_0, refQ5_0, []int{0}},
	{Q5_1, refQ5_1, []int{0, 2}},
	{IQ4_NL, refIQ4_NL, []int{0}},
	{Q4_K, refQ4_K, []int{0, 2}},
	{Q5_K, refQ5_K, []int{0, 2}},
	{Q6_K, refQ6_K, []int{208}},
}

func randomBlocks(rng *rand.Rand, c refCase, blocks int) []byte {
	bb := c.typ.BlockBytes()
	data := make([]byte, blocks*bb)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for b := range blocks {
		for _, off := range c.scaleAt {
			binary.LittleEndian.PutUint16(data[b*bb+off:], randomScale(rng))
		}
	}
	return data
}

func TestDequantizeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range refCases {
		t.Run(c.typ.String(), func(t *testing.T) {
			const blocks = 64
			data := randomBlocks(rng, c, blocks)
			bs, bb := c.typ.BlockSize(), c.typ.BlockBytes()
			got, err := Dequantize(c.typ, data, blocks*bs)
			require.NoError(t, err)
			require.Len(t, got, blocks*bs)
			nonZero := 0
			for b := range blocks {
				block := data[b*bb : (b+1)*bb]
				for i := range bs {
					want := c.ref(block, i)
					g := float64(got[b*bs+i])
					// A few float32 roundings of products apart at most.
					tol := 4e-7*math.Abs(want) + 1e-30
					if c.typ == Q4_K || c.typ == Q5_K || c.typ == Q4_1 || c.typ == Q5_1 {
						// a*b - c: cancellation makes the error relative to the terms.
						tol = 4e-7 * (math.Abs(want) + 2*refF16Abs(block))
					}
					require.InDeltaf(t, want, g, tol, "block %d element %d", b, i)
					if want != 0 {
						nonZero++
					}
				}
			}
			assert.Greater(t, nonZero, blocks*bs/2, "test data should be mostly non-zero")
		})
	}
}

// refF16Abs bounds the magnitude of the additive terms of a Q4_1 or Q4_K
// block: max over its two leading f16 fields times the largest multiplier.
func refF16Abs(block []byte) float64 {
	return 63 * 15 * max(math.Abs(refF16(le16(block, 0))), math.Abs(refF16(le16(block, 2))))
}

func TestDequantizeKnownBlocks(t *testing.T) {
	// Q4_0, d = 1: byte 0 = 0x9a gives element 0 = 0xa-8 = 2 and element 16 = 9-8 = 1.
	q40 := make([]byte, 18)
	binary.LittleEndian.PutUint16(q40, 0x3c00)
	for i := range 16 {
		q40[2+i] = 0x88
	}
	q40[2] = 0x9a
	got, err := Dequantize(Q4_0, q40, 32)
	require.NoError(t, err)
	assert.Equal(t, float32(2), got[0])
	assert.Equal(t, float32(1), got[16])
	assert.Equal(t, float32(0), got[1])

	// Q8_0, d = 0.5: int8 -3 gives -1.5.
	q80 := make([]byte, 34)
	binary.LittleEndian.PutUint16(q80, 0x3800)
	q80[2+5] = 0xfd
	got, err = Dequantize(Q8_0, q80, 32)
	require.NoError(t, err)
	assert.Equal(t, float32(-1.5), got[5])

	// F32, F16 and BF16 elements.
	f32 := binary.LittleEndian.AppendUint32(nil, math.Float32bits(-2.25))
	got, err = Dequantize(F32, f32, 1)
	require.NoError(t, err)
	assert.Equal(t, []float32{-2.25}, got)
	got, err = Dequantize(F16, []byte{0x00, 0xc0, 0x00, 0x3c}, 2)
	require.NoError(t, err)
	assert.Equal(t, []float32{-2, 1}, got)
	got, err = Dequantize(BF16, []byte{0xc0, 0x3f}, 1)
	require.NoError(t, err)
	assert.Equal(t, []float32{1.5}, got)
}

func TestDequantizeRejectsBadInput(t *testing.T) {
	_, err := Dequantize(Q4_0, make([]byte, 18), 16)
	assert.ErrorContains(t, err, "whole number")
	_, err = Dequantize(Q4_0, make([]byte, 17), 32)
	assert.ErrorContains(t, err, "need 18 bytes, got 17")
	_, err = Dequantize(Q4_0, make([]byte, 36), 32)
	assert.Error(t, err)
	_, err = Dequantize(IQ4_XS, make([]byte, 136), 256)
	assert.ErrorContains(t, err, "IQ4_XS")
	_, err = Dequantize(Type(4), nil, 0)
	assert.ErrorContains(t, err, "type(4)")
	_, err = Dequantize(F32, nil, -1)
	assert.Error(t, err)
	got, err := Dequantize(Q6_K, nil, 0)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestRowBytes(t *testing.T) {
	for _, c := range []struct {
		typ  Type
		n    int
		want int
	}{
		{F32, 3, 12}, {F16, 3, 6}, {BF16, 5, 10},
		{Q4_0, 64, 36}, {Q4_1, 32, 20}, {Q8_0, 96, 102},
		{Q4_K, 512, 288}, {Q6_K, 256, 210}, {Q5_K, 256, 176}, {IQ4_XS, 256, 136},
	} {
		got, err := RowBytes(c.typ, c.n)
		require.NoError(t, err, c.typ)
		assert.Equal(t, c.want, got, c.typ)
	}
	_, err := RowBytes(Q4_K, 100)
	assert.Error(t, err)
	_, err = RowBytes(Type(99), 1)
	assert.ErrorContains(t, err, "type(99)")
	_, err = RowBytes(F64, math.MaxInt/4)
	assert.ErrorContains(t, err, "overflow")
}

func TestTypeNames(t *testing.T) {
	assert.Equal(t, "Q4_K", Q4_K.String())
	assert.Equal(t, "BF16", BF16.String())
	assert.Equal(t, "IQ2_XXS", IQ2_XXS.String())
	assert.Equal(t, "type(5)", Type(5).String())
	assert.True(t, Q6_K.Known())
	assert.False(t, Type(31).Known())
	assert.True(t, Q4_K.CanDequantize())
	assert.True(t, Q5_K.CanDequantize())
	assert.False(t, Q4_K.CanQuantize())
}

func TestCheckScales(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range refCases {
		data := randomBlocks(rng, c, 3)
		require.NoError(t, CheckScales(c.typ, data))
		off := c.scaleAt[len(c.scaleAt)-1]
		binary.LittleEndian.PutUint16(data[2*c.typ.BlockBytes()+off:], 0x7c00) // +Inf
		assert.ErrorContains(t, CheckScales(c.typ, data), "block 2 has a non-finite scale (+Inf", c.typ.String())
	}
}
