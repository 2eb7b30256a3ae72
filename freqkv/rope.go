package freqkv

import (
	"fmt"
	"math"
)

// Rope rotates x in place to position pos. x holds one or more heads of headDim values;
// the rotary dimension is the whole head. Pair i (i < headDim/2) turns by the angle
// pos * base^(-2i/headDim). With neox false the pairs are adjacent, (x[2i], x[2i+1]),
// as in GGUF 'llama' models; with neox true they are the split halves, (x[i], x[i+headDim/2]).
func Rope(x []float64, pos, headDim int, base float64, neox bool) error {
	return rotate(x, pos, headDim, base, neox, 1)
}

// InverseRope undoes Rope with the same arguments.
func InverseRope(x []float64, pos, headDim int, base float64, neox bool) error {
	return rotate(x, pos, headDim, base, neox, -1)
}

func rotate(x []float64, pos, headDim int, base float64, neox bool, direction float64) error {
	if headDim < 2 || headDim%2 != 0 {
		return fmt.Errorf("freqkv: rope head dimension %d must be even and positive", headDim)
	}
	if len(x)%headDim != 0 {
		return fmt.Errorf("freqkv: rope of %d values, not a whole number of heads of %d", len(x), headDim)
	}
	if pos < 0 {
		return fmt.Errorf("freqkv: rope position %d is negative", pos)
	}
	if !(base > 0) || math.IsInf(base, 0) {
		return fmt.Errorf("freqkv: rope frequency base %g must be positive and finite", base)
	}
	half := headDim / 2
	for i := range half {
		angle := direction * float64(pos) * math.Pow(base, -2*float64(i)/float64(headDim))
		sin, cos := math.Sincos(angle)
		first, second := 2*i, 2*i+1
		if neox {
			first, second = i, i+half
		}
		for head := 0; head < len(x); head += headDim {
			a, b := x[head+first], x[head+second]
			x[head+first] = a*cos - b*sin
			x[head+second] = a*sin + b*cos
		}
	}
	return nil
}
