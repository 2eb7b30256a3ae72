package fft

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

// Forward and Inverse agree with the DFT's definition, summed directly, for powers of two
// (radix 2) and other lengths (Bluestein), on random non-zero inputs.
func TestMatchesDFT(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	nonZero := func() float64 {
		x := 0.1 + 0.9*rng.Float64()
		if rng.IntN(2) == 0 {
			x = -x
		}
		return x
	}
	for _, n := range []int{1, 2, 3, 5, 6, 8, 12, 37, 64, 100, 257} {
		tol := 3e-15 * float64(n+8)
		x := make([]complex128, n)
		for i := range x {
			x[i] = complex(nonZero(), nonZero())
		}
		want := make([]complex128, n)
		for k := range want {
			for j, v := range x {
				want[k] += v * cmplx.Exp(complex(0, -2*math.Pi*float64(j*k%n)/float64(n)))
			}
		}
		got := append([]complex128(nil), x...)
		plan := New(n)
		plan.Forward(got)
		for k := range got {
			if d := cmplx.Abs(got[k] - want[k]); d > tol {
				t.Errorf("n=%d k=%d: |FFT - DFT| = %g > %g", n, k, d, tol)
			}
		}
		plan.Inverse(got)
		for k := range got {
			if d := cmplx.Abs(got[k] - x[k]); d > tol {
				t.Errorf("inverse n=%d k=%d: error %g > %g", n, k, d, tol)
			}
		}
	}
}
