package freqkv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/dsp/fourier"
)

// The references below are the plain cosine sums of docs/freqkv.md, written independently of
// the package's FFT path.

func scaleOrtho(k, n int) float64 {
	if k == 0 {
		return 1 / math.Sqrt(float64(n))
	}
	return math.Sqrt(2 / float64(n))
}

// cosineDCT2 returns the first count orthonormal DCT-II coefficients of x.
func cosineDCT2(x []float64, count int) []float64 {
	n := len(x)
	out := make([]float64, count)
	for k := range out {
		var sum float64
		for j, v := range x {
			sum += v * math.Cos(math.Pi*float64((2*j+1)*k)/float64(2*n))
		}
		out[k] = scaleOrtho(k, n) * sum
	}
	return out
}

func cosineDCT3(coeffs []float64) []float64 {
	n := len(coeffs)
	out := make([]float64, n)
	for j := range out {
		var sum float64
		for k, c := range coeffs {
			sum += scaleOrtho(k, n) * c * math.Cos(math.Pi*float64((2*j+1)*k)/float64(2*n))
		}
		out[j] = sum
	}
	return out
}

// cosineCompress is the O(L*m) compression of one channel.
func cosineCompress(x []float64, kept int) []float64 {
	y := cosineDCT3(cosineDCT2(x, kept))
	scale := math.Sqrt(float64(kept) / float64(len(x)))
	for i := range y {
		y[i] *= scale
	}
	return y
}

func column(rowMajor []float64, channels, ch int) []float64 {
	out := make([]float64, len(rowMajor)/channels)
	for i := range out {
		out[i] = rowMajor[i*channels+ch]
	}
	return out
}

var testSpans = []int{1, 2, 3, 4, 5, 8, 37, 100, 1000, 4092}

// keptLengths are several m in [1, L] for a span L, the edges included.
func keptLengths(span int) []int {
	set := map[int]bool{1: true, span: true, max(1, span/2): true, max(1, span-1): true, min(span, 2): true,
		max(1, span/3): true}
	var out []int
	for m := range set {
		out = append(out, m)
	}
	return out
}

// transformTolerance bounds float64 rounding of an O(n log n) transform against an O(n^2)
// sum of n terms of magnitude <= 1.
func transformTolerance(n int) float64 { return 3e-15 * float64(n+8) }

func TestDCT2OrthoMatchesCosineSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range testSpans {
		x := randomNonZero(rng, n)
		assertClose(t, DCT2Ortho(x), cosineDCT2(x, n), transformTolerance(n), fmt.Sprintf("DCT-II L=%d", n))
	}
}

func TestDCT3OrthoMatchesCosineSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range testSpans {
		coeffs := randomNonZero(rng, n)
		assertClose(t, DCT3Ortho(coeffs), cosineDCT3(coeffs), transformTolerance(n), fmt.Sprintf("DCT-III L=%d", n))
	}
}

func TestDCT3OrthoInvertsDCT2Ortho(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range testSpans {
		x := randomNonZero(rng, n)
		spectrum := DCT2Ortho(x)
		assertClose(t, DCT3Ortho(spectrum), x, transformTolerance(n), fmt.Sprintf("DCT3(DCT2(x)) L=%d", n))
		assertClose(t, DCT2Ortho(DCT3Ortho(x)), x, transformTolerance(n), fmt.Sprintf("DCT2(DCT3(x)) L=%d", n))

		// Orthonormal: the energy is preserved.
		var energy, spectralEnergy float64
		for i := range x {
			energy += x[i] * x[i]
			spectralEnergy += spectrum[i] * spectrum[i]
		}
		require.InEpsilonf(t, energy, spectralEnergy, 1e-12, "Parseval L=%d", n)
	}
}

func TestDCTOfEmptyInputIsEmpty(t *testing.T) {
	require.Empty(t, DCT2Ortho(nil))
	require.Empty(t, DCT3Ortho(nil))
}

func TestCompressMatchesCosineSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, span := range testSpans {
		channels := 3
		if span > 1000 {
			channels = 1 // the O(L*m) reference is the slow part
		}
		for _, kept := range keptLengths(span) {
			x := randomNonZero(rng, span*channels)
			y, err := Compress(x, span, channels, kept)
			require.NoError(t, err)
			require.Len(t, y, kept*channels)
			for ch := range channels {
				assertClose(t, column(y, channels, ch), cosineCompress(column(x, channels, ch), kept),
					transformTolerance(span), fmt.Sprintf("L=%d m=%d channel %d", span, kept, ch))
			}
		}
	}
}

func TestCompressMatchesLinearMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, span := range []int{1, 2, 3, 5, 8, 37, 100, 128} {
		for _, kept := range keptLengths(span) {
			// M[j][n] = sqrt(m/L) * sum_k s_m(k) cos(pi(2j+1)k/2m) * s_L(k) cos(pi(2n+1)k/2L)
			matrix := make([][]float64, kept)
			for j := range matrix {
				matrix[j] = make([]float64, span)
				for n := range span {
					var sum float64
					for k := range kept {
						sum += scaleOrtho(k, kept) * math.Cos(math.Pi*float64((2*j+1)*k)/float64(2*kept)) *
							scaleOrtho(k, span) * math.Cos(math.Pi*float64((2*n+1)*k)/float64(2*span))
					}
					matrix[j][n] = math.Sqrt(float64(kept)/float64(span)) * sum
				}
			}
			const channels = 2
			x := randomNonZero(rng, span*channels)
			y, err := Compress(x, span, channels, kept)
			require.NoError(t, err)
			for ch := range channels {
				xs := column(x, channels, ch)
				want := make([]float64, kept)
				for j := range want {
					for n, v := range xs {
						want[j] += matrix[j][n] * v
					}
				}
				assertClose(t, column(y, channels, ch), want, transformTolerance(span),
					fmt.Sprintf("y = M x, L=%d m=%d channel %d", span, kept, ch))
			}
		}
	}
}

// The sqrt(m/L) scale keeps a constant signal's amplitude: DC is the only frequency.
func TestCompressKeepsConstantChannels(t *testing.T) {
	for _, span := range []int{3, 37, 4092} {
		x := make([]float64, span*2)
		for row := range span {
			x[row*2], x[row*2+1] = 0.75, -2
		}
		kept := span / 2
		y, err := Compress(x, span, 2, kept)
		require.NoError(t, err)
		for row := range kept {
			require.InDeltaf(t, 0.75, y[row*2], 1e-12, "L=%d row %d", span, row)
			require.InDeltaf(t, -2, y[row*2+1], 1e-12, "L=%d row %d", span, row)
		}
	}
}

func TestCompressorWorksInPlaceAndIsReusable(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const span, kept, channels = 37, 18, 4
	compressor, err := NewCompressor(span, kept)
	require.NoError(t, err)
	require.Equal(t, span, compressor.Span())
	require.Equal(t, kept, compressor.Kept())
	for range 3 {
		x := randomNonZero(rng, span*channels)
		want, err := Compress(x, span, channels, kept)
		require.NoError(t, err)
		require.NoError(t, compressor.Compress(x[:kept*channels], x, channels))
		require.Equal(t, want, x[:kept*channels], "in place must be bit-identical to out of place")
	}
}

func TestCompressRejectsBadInput(t *testing.T) {
	x := make([]float64, 12)
	for _, tc := range []struct {
		name                 string
		span, channels, kept int
		wantErrorMentioning  string
	}{
		{"empty span", 0, 1, 1, "span of 0 rows"},
		{"nothing kept", 4, 3, 0, "into 0"},
		{"more kept than span", 4, 3, 5, "into 5"},
		{"no channels", 4, 0, 2, "0 channels"},
		{"wrong size", 5, 3, 2, "has 12 values, want 5 rows x 3 channels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compress(x, tc.span, tc.channels, tc.kept)
			require.ErrorContains(t, err, tc.wantErrorMentioning)
		})
	}
	compressor, err := NewCompressor(4, 2)
	require.NoError(t, err)
	require.ErrorContains(t, compressor.Compress(make([]float64, 5), make([]float64, 12), 3), "output has 5 values")
}

// Gonum's QuarterWaveFFT (FFTPACK cosqf/cosqb) is a third, independent implementation;
// this pins down its normalisation, which is easy to get wrong: CosSequence is 4x the
// unnormalised DCT-II, and CosCoefficients, despite its name, is an unnormalised DCT-III,
// out[j] = in[0] + 2*sum_{k>0} in[k]*cos(pi*(2j+1)*k/(2n)). Gonum's DCT type is a DCT-I.
func TestDCTAgreesWithGonumQuarterWave(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, n := range []int{1, 2, 3, 5, 8, 37, 100, 4092} {
		quarter := fourier.NewQuarterWaveFFT(n)
		x := randomNonZero(rng, n)

		gonumDCT2 := quarter.CosSequence(nil, x)
		for k := range gonumDCT2 {
			gonumDCT2[k] *= scaleOrtho(k, n) / 4
		}
		assertClose(t, DCT2Ortho(x), gonumDCT2, transformTolerance(n), fmt.Sprintf("DCT-II vs gonum, n=%d", n))

		weighted := make([]float64, n)
		weighted[0] = x[0] / math.Sqrt(float64(n))
		for k := 1; k < n; k++ {
			weighted[k] = x[k] / math.Sqrt(2*float64(n))
		}
		assertClose(t, DCT3Ortho(x), quarter.CosCoefficients(nil, weighted), transformTolerance(n),
			fmt.Sprintf("DCT-III vs gonum, n=%d", n))
	}
}
