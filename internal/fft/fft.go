// Package fft is the repository's one float64 FFT: the DCT reference (package freqkv)
// runs on it, and the GPU compressor computes its Bluestein filter tables with it.
package fft

import (
	"math"
	"math/bits"
)

// Plan computes complex DFTs of one fixed length in O(n log n): radix-2 Cooley-Tukey
// when n is a power of two, otherwise Bluestein's chirp-z transform, which rewrites the DFT
// as a circular convolution of power-of-two length. Not safe for concurrent use.
type Plan struct {
	n      int
	radix2 *radix2Plan // set when n is a power of two

	// Bluestein, when n is not a power of two.
	chirp          []complex128 // exp(-i*pi*k^2/n), k < n
	filterSpectrum []complex128 // DFT of the conjugate chirp, wrapped to the convolution length
	conv           *radix2Plan
	work           []complex128
}

// New returns the plan of length n >= 1.
func New(n int) *Plan {
	if isPowerOfTwo(n) {
		return &Plan{n: n, radix2: newRadix2Plan(n)}
	}
	convLen := 1 << bits.Len(uint(2*n-2)) // smallest power of two >= 2n-1
	p := &Plan{
		n:              n,
		chirp:          make([]complex128, n),
		filterSpectrum: make([]complex128, convLen),
		conv:           newRadix2Plan(convLen),
		work:           make([]complex128, convLen),
	}
	for k := range n {
		// k^2 mod 2n keeps the angle small, so it stays exact for long spans.
		p.chirp[k] = UnitPhasor(-math.Pi * float64((k*k)%(2*n)) / float64(n))
	}
	p.filterSpectrum[0] = conj(p.chirp[0])
	for k := 1; k < n; k++ {
		p.filterSpectrum[k] = conj(p.chirp[k])
		p.filterSpectrum[convLen-k] = conj(p.chirp[k])
	}
	p.conv.transform(p.filterSpectrum)
	return p
}

// Forward replaces x (length n) by its DFT, X[k] = sum_j x[j] exp(-2*pi*i*j*k/n).
func (p *Plan) Forward(x []complex128) {
	if p.radix2 != nil {
		p.radix2.transform(x)
		return
	}
	clear(p.work)
	for k, v := range x {
		p.work[k] = v * p.chirp[k]
	}
	p.conv.transform(p.work)
	for k := range p.work {
		p.work[k] *= p.filterSpectrum[k]
	}
	p.conv.inverse(p.work)
	for k := range x {
		x[k] = p.work[k] * p.chirp[k]
	}
}

// Inverse replaces x by its inverse DFT, including the 1/n factor.
func (p *Plan) Inverse(x []complex128) {
	conjugateAll(x)
	p.Forward(x)
	scale := 1 / float64(p.n)
	for k, v := range x {
		x[k] = complex(real(v)*scale, -imag(v)*scale)
	}
}

// radix2Plan is an in-place iterative Cooley-Tukey DFT of power-of-two length.
type radix2Plan struct {
	n        int
	twiddles []complex128 // exp(-2*pi*i*k/n), k < n/2
}

func newRadix2Plan(n int) *radix2Plan {
	p := &radix2Plan{n: n, twiddles: make([]complex128, n/2)}
	for k := range p.twiddles {
		// Each twiddle from its own angle: a recurrence would accumulate rounding.
		p.twiddles[k] = UnitPhasor(-2 * math.Pi * float64(k) / float64(n))
	}
	return p
}

func (p *radix2Plan) transform(x []complex128) {
	n := p.n
	for i, j := 1, 0; i < n; i++ { // bit-reversal permutation
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		half, stride := size/2, n/size
		for start := 0; start < n; start += size {
			for k := range half {
				a, b := x[start+k], x[start+k+half]*p.twiddles[k*stride]
				x[start+k], x[start+k+half] = a+b, a-b
			}
		}
	}
}

func (p *radix2Plan) inverse(x []complex128) {
	conjugateAll(x)
	p.transform(x)
	scale := 1 / float64(p.n)
	for k, v := range x {
		x[k] = complex(real(v)*scale, -imag(v)*scale)
	}
}

func isPowerOfTwo(n int) bool { return n > 0 && n&(n-1) == 0 }

// UnitPhasor is exp(i*angle).
func UnitPhasor(angle float64) complex128 {
	s, c := math.Sincos(angle)
	return complex(c, s)
}

func conj(z complex128) complex128 { return complex(real(z), -imag(z)) }

func conjugateAll(x []complex128) {
	for k, v := range x {
		x[k] = conj(v)
	}
}
