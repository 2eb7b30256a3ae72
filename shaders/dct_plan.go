package shaders

import (
	"math"
	"math/bits"
	"math/cmplx"

	"github.com/freqkv/freqkv/internal/fft"
)

// maxPrimeRadix is the largest odd prime factor a pass computes as a direct DFT; lengths
// with larger prime factors use Bluestein.
const maxPrimeRadix = 31

// maxRadix is the largest composite radix of one pass (measured on lavapipe: radix 8 and
// 16 passes run near the copy bandwidth, 32 and 64 spill registers and run 1.5-3x slower).
const maxRadix = 16

// dctKnobs are test settings of the transforms, fields of an Ops (not package variables)
// so tests that change them can run in parallel with tests that do not.
type dctKnobs struct {
	forceBluestein bool   // every length above 1 runs Bluestein (tests compare the two paths)
	maxGroups      int    // workgroups per dispatch dimension; 0: WebGPU's default limit 65535
	bindingLimit   uint64 // when set, lowers the storage binding limit Compress plans with
}

// groupLimit is the most workgroups one dispatch takes per dimension; larger grids are
// split into several dispatches.
func (k dctKnobs) groupLimit() int {
	if k.maxGroups > 0 {
		return k.maxGroups
	}
	return 65535
}

// fftStage is the plan of one DCT length and direction: stage A (sign -1) computes the
// forward DFT of a DCT-II, stage B (sign +1) the inverse DFT of a DCT-III.
type fftStage struct {
	n       int   // signal length
	sign    int   // -1: DCT-II (forward DFT), +1: DCT-III (inverse DFT)
	conv    int   // FFT length: n, or the Bluestein power of two >= 2n-1
	blue    bool  // Bluestein
	radices []int // passes of one FFT of length conv
	// vec2 offsets in the table: twiddles exp(-2*pi*i*t/conv), chirp exp(sign*i*pi*j^2/n),
	// Bluestein filter FFT(conj chirp)/conv, Makhoul twiddles exp(sign*i*pi*k/(4n)).
	twOff, chirpOff, filtOff, wOff int
}

// planStage plans length n in direction sign; bluestein forces the chirp-z path.
func planStage(n, sign int, bluestein bool) fftStage {
	st := fftStage{n: n, sign: sign, conv: n}
	radices, ok := planRadices(n)
	if !ok || (bluestein && n > 1) {
		st.blue = true
		st.conv = 1 << bits.Len(uint(2*n-2))
		radices, _ = planRadices(st.conv)
	}
	st.radices = radices
	return st
}

// table computes the stage's constants in float64 (WGSL's sin and cos are only required
// to be accurate to 2^-11), sets their offsets, and returns them rounded to float32, as
// (re, im) pairs.
func (st *fftStage) table() []float32 {
	var tab []complex128
	phasor := func(turns float64) complex128 { return fft.UnitPhasor(2 * math.Pi * turns) }
	st.twOff = 0
	for t := 0; t < st.conv; t++ {
		tab = append(tab, phasor(-float64(t)/float64(st.conv)))
	}
	if st.blue {
		n := st.n
		st.chirpOff = len(tab)
		chirp := make([]complex128, n)
		for j := range chirp {
			// exp(sign*i*pi*j^2/n) with j^2 reduced mod 2n so the angle stays exact.
			jj := (int64(j) * int64(j)) % int64(2*n)
			chirp[j] = phasor(float64(st.sign) * float64(jj) / float64(2*n))
		}
		tab = append(tab, chirp...)
		filter := make([]complex128, st.conv)
		filter[0] = cmplx.Conj(chirp[0])
		for j := 1; j < n; j++ {
			filter[j] = cmplx.Conj(chirp[j])
			filter[st.conv-j] = cmplx.Conj(chirp[j])
		}
		fft.New(st.conv).Forward(filter)
		st.filtOff = len(tab)
		for _, f := range filter {
			tab = append(tab, f/complex(float64(st.conv), 0))
		}
	}
	st.wOff = len(tab)
	for k := 0; k < st.n; k++ {
		tab = append(tab, phasor(float64(st.sign)*float64(k)/float64(4*st.n)))
	}
	data := make([]float32, 2*len(tab))
	for i, z := range tab {
		data[2*i], data[2*i+1] = float32(real(z)), float32(imag(z))
	}
	return data
}

// planRadices factors an FFT length into passes: prime factors packed first-fit
// decreasing into radices of at most maxRadix (a larger prime is a pass of its own).
// ok is false when a prime factor exceeds maxPrimeRadix.
func planRadices(n int) (radices []int, ok bool) {
	if n == 1 {
		return []int{1}, true
	}
	var primes []int
	for rest := n; rest > 1; {
		f := smallestFactor(rest)
		if f > maxPrimeRadix {
			return nil, false
		}
		primes = append(primes, f)
		rest /= f
	}
	for i := len(primes) - 1; i >= 0; i-- { // decreasing
		f := primes[i]
		placed := false
		for b := range radices {
			if radices[b]*f <= maxRadix {
				radices[b] *= f
				placed = true
				break
			}
		}
		if !placed {
			radices = append(radices, f)
		}
	}
	return radices, true
}

func smallestFactor(n int) int {
	for f := 2; f*f <= n; f++ {
		if n%f == 0 {
			return f
		}
	}
	return n
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// fftLen is the FFT length a DCT of length n runs on.
func fftLen(n int, bluestein bool) int {
	if n == 1 {
		return 1
	}
	if _, ok := planRadices(n); ok && !bluestein {
		return n
	}
	return 1 << bits.Len(uint(2*n-2))
}
