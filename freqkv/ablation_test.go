package freqkv

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// naiveAblation is the definition, O(L^2) with explicit cosines: y = c * DCT-III_m(Y),
// Y[j] = X[k0+j], X the orthonormal DCT-II of x.
func naiveAblation(x []float64, m int, keep Keep, scale Scale) []float64 {
	l := len(x)
	s := func(k, n int) float64 {
		if k == 0 {
			return math.Sqrt(1 / float64(n))
		}
		return math.Sqrt(2 / float64(n))
	}
	k0 := 0
	if keep == KeepHigh {
		k0 = l - m
	}
	y := make([]float64, m)
	for j := range m {
		xk := 0.0
		for n := range l {
			xk += x[n] * math.Cos(math.Pi*float64(2*n+1)*float64(k0+j)/float64(2*l))
		}
		xk *= s(k0+j, l)
		for i := range m {
			y[i] += s(j, m) * xk * math.Cos(math.Pi*float64(2*i+1)*float64(j)/float64(2*m))
		}
	}
	c := math.Sqrt(float64(m) / float64(l))
	if scale == ScaleEnergy {
		c = 1
	}
	for i := range y {
		y[i] *= c
	}
	return y
}

func TestCompressorAblations(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, lm := range [][2]int{{2, 1}, {7, 3}, {16, 8}, {37, 18}, {100, 29}} {
		l, m := lm[0], lm[1]
		x := make([]float64, l)
		for i := range x {
			x[i] = r.Float64()*2 - 1
		}
		for _, keep := range []Keep{KeepLow, KeepHigh} {
			for _, scale := range []Scale{ScaleAmplitude, ScaleEnergy} {
				c, err := NewCompressorAblation(l, m, keep, scale)
				require.NoError(t, err)
				got := make([]float64, m)
				require.NoError(t, c.Compress(got, x, 1))
				want := naiveAblation(x, m, keep, scale)
				for i := range want {
					require.InDelta(t, want[i], got[i], 1e-12, "L=%d m=%d %v %v row %d", l, m, keep, scale, i)
				}
				if scale == ScaleEnergy {
					// the output holds exactly the kept coefficients' energy
					coef := DCT2Ortho(x)
					k0 := 0
					if keep == KeepHigh {
						k0 = l - m
					}
					e, ey := 0.0, 0.0
					for j := range m {
						e += coef[k0+j] * coef[k0+j]
						ey += got[j] * got[j]
					}
					require.InDelta(t, e, ey, 1e-12)
				}
			}
		}
	}
	_, err := NewCompressorAblation(4, 2, Keep(7), ScaleAmplitude)
	require.Error(t, err)
	require.Error(t, Config{CacheSize: 16, Sink: 2, Ratio: 0.5, Scale: Scale(3)}.Validate())
	for _, s := range []string{"low", "high"} {
		k, err := ParseKeep(s)
		require.NoError(t, err)
		require.Equal(t, s, k.String())
	}
	for _, s := range []string{"amplitude", "energy"} {
		k, err := ParseScale(s)
		require.NoError(t, err)
		require.Equal(t, s, k.String())
	}
	_, err = ParseKeep("mid")
	require.Error(t, err)
	var k Keep
	require.NoError(t, k.UnmarshalText([]byte("high")))
	require.Equal(t, KeepHigh, k)
	var sc Scale
	require.NoError(t, sc.UnmarshalText([]byte("energy")))
	require.Equal(t, ScaleEnergy, sc)
	require.Error(t, sc.UnmarshalText([]byte("loud")))
}
