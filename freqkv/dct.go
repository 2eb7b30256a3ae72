package freqkv

import (
	"fmt"
	"math"
	"math/cmplx"

	"github.com/freqkv/freqkv/internal/fft"
)

// dctPlan computes the orthonormal DCT-II and DCT-III of one length by Makhoul's method:
// an n-point complex FFT of the even/odd reordered signal and a twiddle by
// exp(-i*pi*k/(2n)). Valid for every n >= 1, odd lengths included.
type dctPlan struct {
	n        int
	fft      *fft.Plan
	twiddles []complex128 // exp(-i*pi*k/(2n)), k < n
	buf      []complex128
}

func newDCTPlan(n int) *dctPlan {
	p := &dctPlan{n: n, fft: fft.New(n), twiddles: make([]complex128, n), buf: make([]complex128, n)}
	for k := range n {
		p.twiddles[k] = fft.UnitPhasor(-math.Pi * float64(k) / float64(2*n))
	}
	return p
}

// orthoScale is s(k) of the orthonormal DCT of length n.
func orthoScale(k, n int) float64 {
	if k == 0 {
		return math.Sqrt(1 / float64(n))
	}
	return math.Sqrt(2 / float64(n))
}

// dct2 writes the first len(dst) <= n orthonormal DCT-II coefficients of x (length n)
// into dst: dst[k] = s(k) * sum_j x[j] cos(pi*(2j+1)*k/(2n)).
func (p *dctPlan) dct2(dst, x []float64) {
	n := p.n
	for j := 0; 2*j < n; j++ { // even samples forward, odd samples backward
		p.buf[j] = complex(x[2*j], 0)
	}
	for j := 0; 2*j+1 < n; j++ {
		p.buf[n-1-j] = complex(x[2*j+1], 0)
	}
	p.fft.Forward(p.buf)
	for k := range dst {
		dst[k] = orthoScale(k, n) * real(p.twiddles[k]*p.buf[k])
	}
}

// dct3 writes into dst (length n) the orthonormal DCT-III of coeffs (length n), the
// inverse of dct2: dst[j] = sum_k s(k) * coeffs[k] * cos(pi*(2j+1)*k/(2n)).
func (p *dctPlan) dct3(dst, coeffs []float64) {
	n := p.n
	// Rescale to the unnormalised DCT-II spectrum X of the output, then undo Makhoul:
	// V[k] = exp(i*pi*k/(2n)) * (X[k] - i*X[n-k]) with X[n] = 0, and v = IDFT(V).
	spectrum := func(k int) float64 {
		if k == 0 {
			return math.Sqrt(float64(n)) * coeffs[0]
		}
		return math.Sqrt(float64(n)/2) * coeffs[k]
	}
	p.buf[0] = complex(spectrum(0), 0)
	for k := 1; k < n; k++ {
		p.buf[k] = cmplx.Conj(p.twiddles[k]) * complex(spectrum(k), -spectrum(n-k))
	}
	p.fft.Inverse(p.buf)
	for j := 0; 2*j < n; j++ {
		dst[2*j] = real(p.buf[j])
	}
	for j := 0; 2*j+1 < n; j++ {
		dst[2*j+1] = real(p.buf[n-1-j])
	}
}

// DCT2Ortho is the orthonormal DCT-II of x (scipy dct(x, type=2, norm="ortho")):
// X[k] = s(k) * sum_j x[j] cos(pi*(2j+1)*k/(2L)), s(0) = sqrt(1/L), s(k>0) = sqrt(2/L).
func DCT2Ortho(x []float64) []float64 {
	out := make([]float64, len(x))
	if len(x) > 0 {
		newDCTPlan(len(x)).dct2(out, x)
	}
	return out
}

// DCT3Ortho is the orthonormal DCT-III of coeffs, the inverse of DCT2Ortho.
func DCT3Ortho(coeffs []float64) []float64 {
	out := make([]float64, len(coeffs))
	if len(coeffs) > 0 {
		newDCTPlan(len(coeffs)).dct3(out, coeffs)
	}
	return out
}

// Compressor resamples spans of a fixed length L to a fixed length m, every channel
// independently, in float64 and O(L log L) per channel:
//
//	y = sqrt(m/L) * DCT-III_ortho_m( DCT-II_ortho_L(x)[0:m] )
//
// It reuses its scratch space, so it is not safe for concurrent use.
type Compressor struct {
	span, kept int
	long       *dctPlan // length L
	short      *dctPlan // length m
	column     []float64
	spectrum   []float64
	resampled  []float64
	full       []float64 // all L coefficients, for KeepHigh
	scale      float64
	keep       Keep
}

// NewCompressor prepares the compression of span rows into kept rows, 1 <= kept <= span.
// kept == span is allowed and is the identity (up to rounding).
func NewCompressor(span, kept int) (*Compressor, error) {
	if span < 1 {
		return nil, fmt.Errorf("freqkv: compressing a span of %d rows; it needs at least 1", span)
	}
	if kept < 1 || kept > span {
		return nil, fmt.Errorf("freqkv: compressing %d rows into %d; the kept length must be in [1, %d]", span, kept, span)
	}
	return &Compressor{
		span:      span,
		kept:      kept,
		long:      newDCTPlan(span),
		short:     newDCTPlan(kept),
		column:    make([]float64, span),
		spectrum:  make([]float64, kept),
		resampled: make([]float64, kept),
		scale:     math.Sqrt(float64(kept) / float64(span)),
	}, nil
}

// NewCompressorAblation is NewCompressor with the coefficients kept and the output scale
// of an ablation (KeepLow and ScaleAmplitude give NewCompressor's).
func NewCompressorAblation(span, kept int, keep Keep, scale Scale) (*Compressor, error) {
	c, err := NewCompressor(span, kept)
	if err != nil {
		return nil, err
	}
	switch keep {
	case KeepLow:
	case KeepHigh:
		c.keep, c.full = keep, make([]float64, span)
	default:
		return nil, fmt.Errorf("freqkv: keep %v: use low or high", keep)
	}
	switch scale {
	case ScaleAmplitude:
	case ScaleEnergy:
		c.scale = 1
	default:
		return nil, fmt.Errorf("freqkv: scale %v: use amplitude or energy", scale)
	}
	return c, nil
}

// Span is the number of rows L the compressor takes.
func (c *Compressor) Span() int { return c.span }

// Kept is the number of rows m the compressor produces.
func (c *Compressor) Kept() int { return c.kept }

// Compress resamples src (L rows x channels, row-major; rows are the sequence axis) into
// dst (m rows x channels, row-major). dst may be src[:m*channels]: each channel is read in
// full before any of its outputs are written, and no other channel's are touched.
func (c *Compressor) Compress(dst, src []float64, channels int) error {
	if channels < 1 {
		return fmt.Errorf("freqkv: compress with %d channels; it needs at least 1", channels)
	}
	if len(src) != c.span*channels {
		return fmt.Errorf("freqkv: compress input has %d values, want %d rows x %d channels = %d",
			len(src), c.span, channels, c.span*channels)
	}
	if len(dst) != c.kept*channels {
		return fmt.Errorf("freqkv: compress output has %d values, want %d rows x %d channels = %d",
			len(dst), c.kept, channels, c.kept*channels)
	}
	for ch := range channels {
		for row := range c.span {
			c.column[row] = src[row*channels+ch]
		}
		if c.keep == KeepHigh {
			c.long.dct2(c.full, c.column)
			copy(c.spectrum, c.full[c.span-c.kept:])
		} else {
			c.long.dct2(c.spectrum, c.column)
		}
		c.short.dct3(c.resampled, c.spectrum)
		for row, v := range c.resampled {
			dst[row*channels+ch] = v * c.scale
		}
	}
	return nil
}

// Compress resamples x, span rows by channels row-major, into kept rows, each channel
// independently (the compression of docs/freqkv.md), and returns the new kept x channels block.
func Compress(x []float64, span, channels, kept int) ([]float64, error) {
	c, err := NewCompressor(span, kept)
	if err != nil {
		return nil, err
	}
	out := make([]float64, kept*max(channels, 0))
	if err := c.Compress(out, x, channels); err != nil {
		return nil, err
	}
	return out, nil
}
