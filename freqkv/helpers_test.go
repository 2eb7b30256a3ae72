package freqkv

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomNonZero returns n values in ±[0.1, 1]: no zeros that could hide a missing term.
func randomNonZero(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = 0.1 + 0.9*rng.Float64()
		if rng.IntN(2) == 0 {
			x[i] = -x[i]
		}
	}
	return x
}

func randomRows(rng *rand.Rand, rows, width int) [][]float64 {
	out := make([][]float64, rows)
	for i := range out {
		out[i] = randomNonZero(rng, width)
	}
	return out
}

func maxAbsDiff(t *testing.T, got, want []float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("length %d, want %d", len(got), len(want))
	}
	var worst float64
	for i := range got {
		worst = math.Max(worst, math.Abs(got[i]-want[i]))
	}
	return worst
}

func assertClose(t *testing.T, got, want []float64, tol float64, what string) {
	t.Helper()
	if diff := maxAbsDiff(t, got, want); !(diff <= tol) {
		t.Fatalf("%s: max |diff| = %.3g > %.3g", what, diff, tol)
	}
}
