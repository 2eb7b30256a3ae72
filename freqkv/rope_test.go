package freqkv

import (
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// complexRope is an independent RoPE: each pair is a complex number multiplied by
// exp(i * pos * base^(-2i/d)).
func complexRope(x []float64, pos, d int, base float64, neox bool) []float64 {
	out := append([]float64(nil), x...)
	for head := 0; head < len(x); head += d {
		for i := range d / 2 {
			re, im := head+2*i, head+2*i+1
			if neox {
				re, im = head+i, head+i+d/2
			}
			frequency := math.Exp(-float64(2*i) / float64(d) * math.Log(base))
			z := complex(x[re], x[im]) * cmplx.Exp(complex(0, float64(pos)*frequency))
			out[re], out[im] = real(z), imag(z)
		}
	}
	return out
}

func dot(a, b []float64) float64 {
	var sum float64
	for i := range a {
		sum += a[i] * b[i]
	}
	return sum
}

func TestRopeMatchesComplexRotation(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, neox := range []bool{false, true} {
		for _, d := range []int{2, 4, 8, 64, 128} {
			for _, base := range []float64{10000, 500000} {
				pos := rng.IntN(4096)
				x := randomNonZero(rng, 3*d)
				got := append([]float64(nil), x...)
				require.NoError(t, Rope(got, pos, d, base, neox))
				// Angles reach 4096 rad, so allow for their rounding in the two formulas.
				assertClose(t, got, complexRope(x, pos, d, base, neox), 1e-11,
					fmt.Sprintf("neox=%v d=%d base=%g pos=%d", neox, d, base, pos))

				require.NoError(t, InverseRope(got, pos, d, base, neox))
				assertClose(t, got, x, 1e-13, fmt.Sprintf("inverse, neox=%v d=%d", neox, d))
			}
		}
	}
}

func TestRopeConventionsDifferOnlyByPairing(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	const d, pos = 8, 1234
	x := randomNonZero(rng, d)
	// Interleaving the halves turns split-half pairs into adjacent pairs.
	interleaved := make([]float64, d)
	for i := range d / 2 {
		interleaved[2*i], interleaved[2*i+1] = x[i], x[i+d/2]
	}
	neox := append([]float64(nil), x...)
	require.NoError(t, Rope(neox, pos, d, 10000, true))
	require.NoError(t, Rope(interleaved, pos, d, 10000, false))
	for i := range d / 2 {
		require.Equal(t, neox[i], interleaved[2*i])
		require.Equal(t, neox[i+d/2], interleaved[2*i+1])
	}
	adjacent := append([]float64(nil), x...)
	require.NoError(t, Rope(adjacent, pos, d, 10000, false))
	require.NotEqual(t, neox, adjacent)
}

// Attention scores depend only on the distance between query and key positions.
func TestRopeScoresAreRelative(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	for _, neox := range []bool{false, true} {
		const d = 16
		q, k := randomNonZero(rng, d), randomNonZero(rng, d)
		score := func(qPos, kPos int) float64 {
			qr, kr := append([]float64(nil), q...), append([]float64(nil), k...)
			require.NoError(t, Rope(qr, qPos, d, 10000, neox))
			require.NoError(t, Rope(kr, kPos, d, 10000, neox))
			return dot(qr, kr)
		}
		require.InDelta(t, score(10, 3), score(1010, 1003), 1e-11)
		require.InDelta(t, score(7, 7), dot(q, k), 1e-12)
		require.Greater(t, math.Abs(score(10, 3)-score(10, 4)), 1e-6, "the score must depend on the distance")
	}
}

func TestRopeAtPositionZeroIsIdentity(t *testing.T) {
	x := randomNonZero(rand.New(rand.NewPCG(47, 48)), 16)
	got := append([]float64(nil), x...)
	require.NoError(t, Rope(got, 0, 8, 10000, false))
	require.Equal(t, x, got)
}

func TestRopeRejectsBadInput(t *testing.T) {
	x := make([]float64, 8)
	require.ErrorContains(t, Rope(x, 1, 3, 10000, false), "dimension 3 must be even")
	require.ErrorContains(t, Rope(x, 1, 0, 10000, false), "dimension 0 must be even")
	require.ErrorContains(t, Rope(x, 1, 6, 10000, false), "8 values, not a whole number of heads of 6")
	require.ErrorContains(t, Rope(x, -1, 8, 10000, false), "position -1 is negative")
	require.ErrorContains(t, InverseRope(x, 1, 8, 0, true), "base 0 must be positive")
	require.ErrorContains(t, Rope(x, 1, 8, math.NaN(), true), "base NaN must be positive")
}
