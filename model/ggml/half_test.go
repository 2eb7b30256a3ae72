package ggml

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refF16 decodes binary16 from its definition: (-1)^s * 2^(e-15) * 1.m, or
// 2^-14 * 0.m for e == 0.
func refF16(h uint16) float64 {
	s, e, m := h>>15, int(h>>10&0x1f), float64(h&0x3ff)
	sign := 1.0
	if s == 1 {
		sign = -1
	}
	switch e {
	case 0:
		return sign * math.Ldexp(m/1024, -14)
	case 31:
		if m == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1+m/1024, e-15)
}

// roundToFormat rounds v to a binary format with p significant bits whose
// smallest normal exponent is emin (value 2^emin) and largest finite value
// maxFinite, ties to even, overflowing to infinity.
func roundToFormat(v float64, p, emin int, maxFinite float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	_, exp := math.Frexp(v) // |v| = f * 2^exp, f in [0.5, 1)
	e := max(exp-1, emin)   // exponent of the leading bit, floored at emin
	ulp := math.Ldexp(1, e-(p-1))
	r := math.RoundToEven(v/ulp) * ulp
	if math.Abs(r) > maxFinite {
		return math.Copysign(math.Inf(1), v)
	}
	return r
}

func TestF16ToF32AllValues(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		got, want := F16ToF32(h), refF16(h)
		if math.IsNaN(want) {
			require.Truef(t, math.IsNaN(float64(got)), "h=%#04x", h)
			continue
		}
		require.Equalf(t, want, float64(got), "h=%#04x", h)
		require.Equalf(t, math.Signbit(want), math.Signbit(float64(got)), "sign of h=%#04x", h)
	}
}

func TestF16RoundTripsEveryValue(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		if math.IsNaN(refF16(h)) {
			assert.True(t, math.IsNaN(float64(F16ToF32(F32ToF16(F16ToF32(h))))))
			continue
		}
		require.Equalf(t, h, F32ToF16(F16ToF32(h)), "h=%#04x", h)
	}
}

func TestF32ToF16RoundsToNearestEven(t *testing.T) {
	const maxHalf = 65504
	check := func(f float32) {
		t.Helper()
		want := roundToFormat(float64(f), 11, -14, maxHalf)
		got := refF16(F32ToF16(f))
		require.Equalf(t, want, got, "f=%g (bits %#08x)", f, math.Float32bits(f))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		// Random exponents across and beyond the half range, random mantissas.
		exp := rng.IntN(60) - 35
		f := float32(math.Ldexp(1+rng.Float64(), exp))
		if rng.IntN(2) == 0 {
			f = -f
		}
		check(f)
	}
	// Exact ties between neighbouring halves, in normal and subnormal range.
	for _, h := range []uint16{0x0000, 0x0001, 0x0002, 0x03ff, 0x0400, 0x3c00, 0x3c01, 0x7bfe} {
		lo, hi := refF16(h), refF16(h+1)
		check(float32((lo + hi) / 2))
		check(float32(-(lo + hi) / 2))
	}
	for _, f := range []float32{65504, 65519.99, 65520, 1e10, 5.96e-8, 2.98e-8, 2.99e-8, 1e-30, 0} {
		check(f)
	}
	assert.Equal(t, uint16(0x7c00), F32ToF16(float32(math.Inf(1))))
	assert.Equal(t, uint16(0xfc00), F32ToF16(float32(math.Inf(-1))))
	assert.Equal(t, uint16(0x8000), F32ToF16(float32(math.Copysign(0, -1))))
	assert.True(t, math.IsNaN(refF16(F32ToF16(float32(math.NaN())))))
}

func TestBF16(t *testing.T) {
	maxBF16 := math.Ldexp(2-math.Ldexp(1, -7), 127)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		exp := rng.IntN(280) - 150
		v := math.Ldexp(1+rng.Float64(), exp)
		if rng.IntN(2) == 0 {
			v = -v
		}
		f := float32(v)
		want := roundToFormat(float64(f), 8, -126, maxBF16)
		got := BF16ToF32(F32ToBF16(f))
		require.Equalf(t, want, float64(got), "f=%g", f)
	}
	// Ties go to even.
	assert.Equal(t, uint16(0x3f80), F32ToBF16(math.Float32frombits(0x3f808000)))
	assert.Equal(t, uint16(0x3f82), F32ToBF16(math.Float32frombits(0x3f818000)))
	assert.True(t, math.IsNaN(float64(BF16ToF32(F32ToBF16(float32(math.NaN()))))))
	assert.Equal(t, float32(1.5), BF16ToF32(0x3fc0))
}
