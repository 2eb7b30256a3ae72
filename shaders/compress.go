package shaders

import (
	"fmt"
	"math"
	"math/bits"
	"math/cmplx"
	"strings"
	"sync"

	"github.com/freqkv/freqkv/engine"
)

// The FreqKV compressor on the GPU (FREQKV.md): orthonormal DCT-II along the sequence
// axis, keep the first m coefficients, orthonormal DCT-III of length m, scale by
// sqrt(m/L), every channel independently, in float32 whatever the cache stores.
//
// Design (dct.wgsl):
//   - Every transform is a chain of barrier-free Stockham FFT passes over global memory,
//     batched over columns. On llvmpipe the invocations of a workgroup are SIMD lanes and
//     barriers are coroutine switches, so a workgroup-memory FFT loses there; on GPUs the
//     passes read and write whole columns of adjacent channels, which coalesces.
//   - A column is a quad of 4 channels of one matrix as a vec4 of two complex numbers:
//     two real channels share one complex FFT (Re = channel c, Im = channel c+1), and each
//     invocation moves 16 bytes per element (llvmpipe's loads cost per instruction).
//   - DCT-II by Makhoul: an L-point FFT of the even/odd reordered signal, then the twiddle
//     exp(-i*pi*k/(2L)). DCT-III is the same backwards. The reordering is fused into the
//     first pass (gather from the cache) and the last pass (scatter to the cache), and the
//     middle step (`mid`) turns the first m DCT-II coefficients straight into the DCT-III
//     input, so the compression reads the span once and writes m rows once. The
//     orthonormal scales, sqrt(m/L) and 1/m all collapse into one factor 1/L.
//   - FFT lengths are factored into primes, packed into passes of radix <= 16 (first-fit
//     decreasing; a prime above 16 is a pass of its own) whose straight-line butterflies
//     are generated in Go (codelet): decimation in time down to primes, an odd prime
//     as a direct DFT on symmetric pairs. L = 4092 = 31*11*12 and m = 2046 = 31*11*6 take
//     3 passes each, 4096 = 16^3 takes 3. A length with a prime factor above
//     maxPrimeRadix runs Bluestein's chirp-z transform on a power-of-two FFT of length
//     >= 2L-1, the chirp and filter products fused into the neighbouring passes. Every
//     method is exact (no approximation beyond float32 rounding).
//   - Index math is division-free (3-D grids of columns x butterflies x groups): llvmpipe
//     scalarises integer division, which made a first version 10x slower.
//   - Twiddles, chirps, Bluestein filters and Makhoul twiddles are computed in float64 on
//     the CPU once per length and device, rounded to float32 and kept in small tables:
//     WGSL's sin/cos are only required to be accurate to 2^-11.
//   - Channels are processed in slices so the scratch stays bounded (CompressScratch).
//     In-place: rows [S, S+L) of each matrix are read by the first pass and the m output
//     rows written by the last pass of the same slice; other slices' channels are
//     untouched. The recent rows move up after all slices, in chunks of L-m rows so that
//     no dispatch reads rows another invocation of it writes.

// maxPrimeRadix is the largest odd prime factor a pass computes as a direct DFT; lengths
// with larger prime factors use Bluestein.
const maxPrimeRadix = 31

// maxRadix is the largest composite radix of one pass (measured on lavapipe: radix 8 and
// 16 passes run near the copy bandwidth, 32 and 64 spill registers and run 1.5-3x slower).
const maxRadix = 16

// DefaultScratchBytes bounds the scratch CompressScratch and DCTScratch size by default.
const DefaultScratchBytes = 64 << 20

// forceBluestein makes every length above 1 use Bluestein (tests compare the two paths).
var forceBluestein = false

// maxGroups is the most workgroups one dispatch takes per dimension (WebGPU's default
// limit); larger grids are split into several dispatches. Tests lower it.
var maxGroups = 65535

// bindingLimit, when set, lowers the storage binding limit Compress plans with (tests
// split small caches into several bound ranges with it).
var bindingLimit uint64

// CompressParams describes an in-place FreqKV compression of Batches matrices of one
// tensor. In each matrix b (rows [b*BatchStride, (b+1)*BatchStride) of the tensor) the
// Sink first rows stay, rows [Sink, Sink+Span) are replaced by their Kept-row
// compression and rows [Sink+Span, Sink+Span+Recent) move up to [Sink+Kept, ...). Rows
// past Sink+Kept+Recent are left with stale values.
type CompressParams struct {
	Sink, Span, Kept, Recent, Channels int
	Batches                            int // matrices in the tensor, e.g. K and V of several layers
	BatchStride                        int // rows between consecutive matrices (the cache capacity)
	// The ablations of FREQKV's choices (false: the method). KeepHigh keeps the highest m
	// DCT-II coefficients X[L-m:L] instead of the lowest X[0:m]. EnergyScale scales the
	// DCT-III output by 1 instead of sqrt(m/L): with orthonormal transforms the m output
	// rows then hold exactly the energy of the kept coefficients, sum_k Y[k]^2 per channel
	// (sqrt(m/L) instead keeps the DC level, i.e. the mean, of the span).
	KeepHigh, EnergyScale bool
}

func (p CompressParams) validate(cache *engine.Tensor) error {
	switch {
	case p.Span < 1 || p.Kept < 1 || p.Kept > p.Span:
		return fmt.Errorf("compress: span %d into %d rows; want 1 <= kept <= span", p.Span, p.Kept)
	case p.Sink < 0 || p.Recent < 0:
		return fmt.Errorf("compress: sink %d and recent %d must not be negative", p.Sink, p.Recent)
	case p.Channels < 1 || p.Batches < 1:
		return fmt.Errorf("compress: %d channels and %d matrices; both must be positive", p.Channels, p.Batches)
	case p.BatchStride < p.Sink+p.Span+p.Recent:
		return fmt.Errorf("compress: batch stride %d rows is below sink+span+recent = %d", p.BatchStride, p.Sink+p.Span+p.Recent)
	case p.Span > 1<<24:
		return fmt.Errorf("compress: span %d rows is over the supported 2^24", p.Span)
	}
	if cache == nil {
		return fmt.Errorf("compress: cache tensor is nil")
	}
	if cache.DType != engine.F32 && cache.DType != engine.F16 {
		return fmt.Errorf("compress: cache %q is %s; want f32 or f16", cache.Buf.Label, cache.DType)
	}
	if cache.DType == engine.F16 && p.Channels%2 != 0 {
		return fmt.Errorf("compress: an f16 cache needs an even channel count (kv_heads*head_dim), got %d", p.Channels)
	}
	if cache.Cols != p.Channels {
		return fmt.Errorf("compress: cache %q has %d columns, want %d channels", cache.Buf.Label, cache.Cols, p.Channels)
	}
	if need := (p.Batches-1)*p.BatchStride + p.Sink + p.Span + p.Recent; cache.Rows < need {
		return fmt.Errorf("compress: cache %q has %d rows, %d matrices of stride %d need %d", cache.Buf.Label, cache.Rows, p.Batches, p.BatchStride, need)
	}
	return nil
}

// stage is the FFT plan and tables of one DCT length on one device: stage A (sign -1)
// computes the forward DFT of a DCT-II, stage B (sign +1) the inverse DFT of a DCT-III.
type stage struct {
	n       int   // signal length
	sign    int   // -1: DCT-II (forward DFT), +1: DCT-III (inverse DFT)
	conv    int   // FFT length: n, or the Bluestein power of two >= 2n-1
	blue    bool  // Bluestein
	radices []int // passes of one FFT of length conv
	table   *engine.Buffer
	// vec2 offsets in table: twiddles exp(-2*pi*i*t/conv), chirp exp(sign*i*pi*j^2/n),
	// Bluestein filter FFT(conj chirp)/conv, Makhoul twiddles exp(sign*i*pi*k/(2n)).
	twOff, chirpOff, filtOff, wOff int
}

type stageKey struct {
	dev       *engine.Device
	n, sign   int
	bluestein bool
}

var (
	stageMu sync.Mutex
	stages  = map[stageKey]*stage{}
)

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

// getStage returns the plan of length n and direction sign on dev, uploading its tables
// on first use.
func getStage(dev *engine.Device, n, sign int) (*stage, error) {
	key := stageKey{dev, n, sign, forceBluestein && n > 1}
	stageMu.Lock()
	defer stageMu.Unlock()
	if st, ok := stages[key]; ok {
		return st, nil
	}
	st := &stage{n: n, sign: sign, conv: n}
	radices, ok := planRadices(n)
	if !ok || key.bluestein {
		st.blue = true
		st.conv = 1 << bits.Len(uint(2*n-2))
		radices, _ = planRadices(st.conv)
	}
	st.radices = radices
	var tab []complex128
	phasor := func(turns float64) complex128 { // exp(2*pi*i*turns)
		s, c := math.Sincos(2 * math.Pi * turns)
		return complex(c, s)
	}
	st.twOff = 0
	for t := 0; t < st.conv; t++ {
		tab = append(tab, phasor(-float64(t)/float64(st.conv)))
	}
	if st.blue {
		st.chirpOff = len(tab)
		chirp := make([]complex128, n)
		for j := range chirp {
			// exp(sign*i*pi*j^2/n) with j^2 reduced mod 2n so the angle stays exact.
			jj := (int64(j) * int64(j)) % int64(2*n)
			chirp[j] = phasor(float64(sign) * float64(jj) / float64(2*n))
		}
		tab = append(tab, chirp...)
		filter := make([]complex128, st.conv)
		filter[0] = cmplx.Conj(chirp[0])
		for j := 1; j < n; j++ {
			filter[j] = cmplx.Conj(chirp[j])
			filter[st.conv-j] = cmplx.Conj(chirp[j])
		}
		fft64(filter)
		st.filtOff = len(tab)
		for _, f := range filter {
			tab = append(tab, f/complex(float64(st.conv), 0))
		}
	}
	st.wOff = len(tab)
	for k := 0; k < n; k++ {
		tab = append(tab, phasor(float64(sign)*float64(k)/float64(4*n)))
	}
	data := make([]float32, 2*len(tab))
	for i, z := range tab {
		data[2*i], data[2*i+1] = float32(real(z)), float32(imag(z))
	}
	buf, err := dev.NewBuffer(fmt.Sprintf("dct tables n=%d sign=%d", n, sign), uint64(4*len(data)))
	if err != nil {
		return nil, err
	}
	if err := buf.Write(0, f32bytes(data)); err != nil {
		buf.Release()
		return nil, err
	}
	st.table = buf
	stages[key] = st
	return st, nil
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		u := math.Float32bits(f)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return b
}

// fft64 is an in-place float64 radix-2 DFT (len(x) a power of two), for the tables.
func fft64(x []complex128) {
	n := len(x)
	for i, j := 1, 0; i < n; i++ {
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
		for k := 0; k < size/2; k++ {
			s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(size))
			w := complex(c, s)
			for start := 0; start < n; start += size {
				a, b := x[start+k], x[start+k+size/2]*w
				x[start+k], x[start+k+size/2] = a+b, a-b
			}
		}
	}
}

// codelet generates the body of fftpass for one radix and direction: loads with the
// inter-pass twiddles, the radix-point DFT in registers, and the stores.
func codelet(radix, sign int) string {
	g := &codeGen{sign: sign}
	in := make([]string, radix)
	for r := range in {
		in[r] = fmt.Sprintf("v%d", r)
		if r == 0 {
			fmt.Fprintf(&g.b, "  let v0 = loadIn(j, col);\n")
		} else {
			fmt.Fprintf(&g.b, "  let v%d = twiddle(loadIn(j + %du * p.stride, col), t1 * %du);\n", r, r, r)
		}
	}
	g.dft(in, func(k int, v string) { fmt.Fprintf(&g.b, "  storeOut(o + %du * p.ns, col, %s);\n", k, v) })
	return g.b.String()
}

// codeGen emits straight-line WGSL for small DFTs on vec4 pairs of complex numbers.
type codeGen struct {
	b    strings.Builder
	n    int
	sign int
}

func (g *codeGen) tmp(expr string) string {
	name := fmt.Sprintf("q_%d", g.n)
	g.n++
	fmt.Fprintf(&g.b, "  let %s = %s;\n", name, expr)
	return name
}

func lit(f float64) string {
	s := fmt.Sprintf("%.9g", f)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// rotate multiplies x by exp(sign*2*pi*i*num/den), trivial angles without a product.
func (g *codeGen) rotate(x string, num, den int) string {
	num %= den
	if num == 0 {
		return x
	}
	d := gcd(num, den)
	num, den = num/d, den/d
	switch {
	case den == 2:
		return g.tmp("-" + x)
	case den == 4 && (num == 1) == (g.sign > 0):
		return g.tmp("muli(" + x + ")")
	case den == 4:
		return g.tmp("-muli(" + x + ")")
	}
	s, c := math.Sincos(float64(g.sign) * 2 * math.Pi * float64(num) / float64(den))
	return g.tmp(fmt.Sprintf("cmul(%s, vec2<f32>(%s, %s))", x, lit(c), lit(s)))
}

// dft emits the DFT of the values named in (any length) and hands each output k to out
// as soon as it is computed: a prime length directly, a composite one by a decimation
// in time on its smallest prime factor.
func (g *codeGen) dft(in []string, out func(k int, v string)) {
	n := len(in)
	switch {
	case n == 1:
		out(0, in[0])
		return
	case n == 2:
		out(0, g.tmp(in[0]+" + "+in[1]))
		out(1, g.tmp(in[0]+" - "+in[1]))
		return
	}
	p := smallestFactor(n)
	if p == n {
		g.prime(in, out)
		return
	}
	// x[r2*n1 + n2], X[k1 + p*k2]: p-point DFTs over n1, twiddles w_n^(n2*k1),
	// r2-point DFTs over n2.
	r2 := n / p
	y := make([][]string, r2)
	for n2 := range y {
		sub := make([]string, p)
		for n1 := range sub {
			sub[n1] = in[r2*n1+n2]
		}
		y[n2] = make([]string, p)
		g.dft(sub, func(k int, v string) { y[n2][k] = v })
	}
	for k1 := 0; k1 < p; k1++ {
		sub := make([]string, r2)
		for n2 := range sub {
			sub[n2] = g.rotate(y[n2][k1], n2*k1, n)
		}
		g.dft(sub, func(k2 int, v string) { out(k1+p*k2, v) })
	}
}

// prime emits an odd prime-length DFT: with s_j = x_j + x_{p-j}, d_j = x_j - x_{p-j},
// X_k = x_0 + sum_j cos(2 pi jk/p) s_j + sign*i * sum_j sin(2 pi jk/p) d_j, X_{p-k} the same with -.
func (g *codeGen) prime(in []string, out func(k int, v string)) {
	p := len(in)
	h := (p - 1) / 2
	s, d := make([]string, h+1), make([]string, h+1)
	sum := in[0]
	for j := 1; j <= h; j++ {
		s[j] = g.tmp(in[j] + " + " + in[p-j])
		d[j] = g.tmp(in[j] + " - " + in[p-j])
		sum += " + " + s[j]
	}
	out(0, g.tmp(sum))
	for k := 1; k <= h; k++ {
		a, b := in[0], ""
		for j := 1; j <= h; j++ {
			angle := 2 * math.Pi * float64(j*k%p) / float64(p)
			a += fmt.Sprintf(" + %s * %s", lit(math.Cos(angle)), s[j])
			if j > 1 {
				b += " + "
			}
			b += fmt.Sprintf("%s * %s", lit(float64(g.sign)*math.Sin(angle)), d[j])
		}
		at, bt := g.tmp(a), g.tmp("muli("+b+")")
		out(k, g.tmp(at+" + "+bt))
		out(p-k, g.tmp(at+" - "+bt))
	}
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

// dctVariant selects one compiled kernel of dct.wgsl.
type dctVariant struct {
	entry         string
	radix, sign   int
	in, out       int
	chirp         bool
	bla, blb, f16 bool
	wgx, wgy      int
}

func (o *Ops) dctKernel(v dctVariant) (*engine.Kernel, error) {
	src, err := Source("dct.wgsl")
	if err != nil {
		return nil, err
	}
	if v.entry == "fftpass" {
		src = strings.Replace(src, "//@CODELET\n", codelet(v.radix, v.sign), 1)
	} else {
		v.radix, v.sign, v.in, v.out, v.chirp = 1, -1, 0, 0, false
	}
	bl := func(b bool) string {
		if b {
			return "true"
		}
		return "false"
	}
	c := engine.Constants{
		"WGX": u(v.wgx), "WGY": u(v.wgy), "RADIX": u(v.radix), "SIGN": fmt.Sprint(v.sign),
		"IN": u(v.in), "OUT": u(v.out), "CHIRP": bl(v.chirp), "BLA": bl(v.bla), "BLB": bl(v.blb), "F16": bl(v.f16),
	}
	name := "dct.wgsl"
	if v.entry == "fftpass" { // distinct names keep the passes apart in profiles
		name = fmt.Sprintf("dct.wgsl[radix %d sign %+d in %d out %d]", v.radix, v.sign, v.in, v.out)
	}
	return o.Dev.Kernel(name, src, v.entry, c)
}

// dctParams mirrors Params in dct.wgsl.
type dctParams struct {
	n, ns, stride, tstep, goff, cols, quads, src, dst, len, kept, row0, bstride, ch, c0, c1,
	base, nb, twa, chirpa, filta, wa, chirpb, wb uint32
	scale                 float32
	batches, koff, kfirst uint32
}

func (p dctParams) words() []uint32 {
	return []uint32{p.n, p.ns, p.stride, p.tstep, p.goff, p.cols, p.quads, p.src, p.dst, p.len, p.kept,
		p.row0, p.bstride, p.ch, p.c0, p.c1, p.base, p.nb, p.twa, p.chirpa, p.filta, p.wa, p.chirpb, p.wb,
		math.Float32bits(p.scale), p.batches, p.koff, p.kfirst}
}

// slice is one batch of columns run through the whole chain: matrices [b0, b0+nb) of the
// bound range, channels [c0, c1).
type slice struct {
	b0, nb, c0, c1 int
}

func (s slice) quads() int { return (s.c1 - s.c0 + 3) / 4 }
func (s slice) cols() int  { return s.nb * s.quads() }

// run records the dispatches of one slice. cacheIn/cacheOut are the bindings the gather
// reads and the scatter writes (the same range when compressing in place); base is the
// element offset of matrix 0 of the range in those bindings.
type chain struct {
	o         *Ops
	rec       *engine.Recorder
	f16       bool
	work      engine.Binding
	half      int // vec4 offset of the second half of work
	bstride   int // rows between matrices
	channels  int
	base      int // elements
	row0      int
	wgx, wgy  int
	cur, next int
}

func workgroupShape(cols int) (int, int) {
	x := 1
	for x < cols && x < 64 {
		x *= 2
	}
	return x, 64 / x
}

func (c *chain) params(s slice) dctParams {
	return dctParams{
		cols: uint32(s.cols()), quads: uint32(s.quads()), src: uint32(c.cur), dst: uint32(c.next),
		row0: uint32(c.row0), bstride: uint32(c.bstride), ch: uint32(c.channels),
		c0: uint32(s.c0), c1: uint32(s.c1), base: uint32(c.base + s.b0*c.bstride*c.channels),
	}
}

func (c *chain) swap() { c.cur, c.next = c.next, c.cur }

// dispatch records one kernel launch; a chain without a recorder only compiles (Prepare).
func (c *chain) dispatch(k *engine.Kernel, p dctParams, grid [3]uint32, cache engine.Binding, ta, tb *stage) error {
	if c.rec == nil {
		return nil
	}
	return c.rec.Dispatch(k, p.words(), grid, cache, c.work, ta.table.All(), tb.table.All())
}

// fft records the passes of one FFT of st.conv points (sign: direction), the first
// gathering from cacheIn when gather, the last scattering to cacheOut when scatter or
// multiplying by the Bluestein filter when filter.
func (c *chain) fft(s slice, st *stage, sign int, gather, filter, scatter bool, cacheIn, cacheOut engine.Binding, signalLen, kept int) error {
	ns := 1
	for i, r := range st.radices {
		v := dctVariant{entry: "fftpass", radix: r, sign: sign, f16: c.f16, wgx: c.wgx, wgy: c.wgy}
		cache := cacheIn
		first, last := i == 0, i == len(st.radices)-1
		if first && gather {
			v.in, v.chirp = 1, st.blue
		}
		if last && filter {
			v.out = 1
		}
		if last && scatter {
			v.out, v.chirp, cache = 2, st.blue, cacheOut
		}
		k, err := c.o.dctKernel(v)
		if err != nil {
			return err
		}
		p := c.params(s)
		p.n, p.ns, p.stride, p.tstep = uint32(st.conv), uint32(ns), uint32(st.conv/r), uint32(st.conv/(ns*r))
		p.len, p.kept = uint32(signalLen), uint32(kept)
		p.twa, p.chirpa, p.filta, p.wa = uint32(st.twOff), uint32(st.chirpOff), uint32(st.filtOff), uint32(st.wOff)
		groups := st.conv / (ns * r)
		perY := maxGroups * c.wgy
		for k0 := 0; k0 < ns; k0 += perY {
			for g0 := 0; g0 < groups; g0 += maxGroups {
				p.koff, p.goff = uint32(k0), uint32(g0)
				grid := [3]uint32{uint32(ceilDiv(s.cols(), c.wgx)), uint32(ceilDiv(min(perY, ns-k0), c.wgy)), uint32(min(maxGroups, groups-g0))}
				if err := c.dispatch(k, p, grid, cache, st, st); err != nil {
					return err
				}
			}
		}
		c.swap()
		ns *= r
	}
	return nil
}

// stageA records the DCT-II stage: the DFT of the packed, reordered signal, gathered from
// rows row0.. of cacheIn.
func (c *chain) stageA(s slice, a *stage, cacheIn engine.Binding) error {
	if !a.blue {
		return c.fft(s, a, -1, true, false, false, cacheIn, cacheIn, a.n, 0)
	}
	if err := c.fft(s, a, -1, true, true, false, cacheIn, cacheIn, a.n, 0); err != nil {
		return err
	}
	return c.fft(s, a, +1, false, false, false, cacheIn, cacheIn, a.n, 0)
}

// stageB records the DCT-III stage from the packed spectrum in work to rows row0.. of cacheOut.
func (c *chain) stageB(s slice, b *stage, cacheOut engine.Binding) error {
	if !b.blue {
		return c.fft(s, b, +1, false, false, true, cacheOut, cacheOut, 0, b.n)
	}
	if err := c.fft(s, b, -1, false, true, false, cacheOut, cacheOut, 0, b.n); err != nil {
		return err
	}
	return c.fft(s, b, +1, false, false, true, cacheOut, cacheOut, 0, b.n)
}

// rows records a row-wise kernel (mid, dct2out, dct3in) over rows rows.
func (c *chain) rows(s slice, v dctVariant, p dctParams, rows int, cache engine.Binding, ta, tb *stage) error {
	v.f16, v.wgx, v.wgy = c.f16, c.wgx, c.wgy
	k, err := c.o.dctKernel(v)
	if err != nil {
		return err
	}
	per := maxGroups * c.wgy
	for r0 := 0; r0 < rows; r0 += per {
		p.goff = uint32(r0)
		grid := [3]uint32{uint32(ceilDiv(s.cols(), c.wgx)), uint32(ceilDiv(min(per, rows-r0), c.wgy)), 1}
		if err := c.dispatch(k, p, grid, cache, ta, tb); err != nil {
			return err
		}
	}
	c.swap()
	return nil
}

// elemBytes is the storage size of one cache element.
func elemBytes(t engine.DType) int {
	if t == engine.F16 {
		return 2
	}
	return 4
}

// workVec4 is the vec4 capacity of a scratch tensor as one binding, and the binding.
func (o *Ops) workBinding(scratch *engine.Tensor) (engine.Binding, int, error) {
	if scratch == nil || scratch.DType != engine.F32 {
		return engine.Binding{}, 0, fmt.Errorf("dct: scratch must be an f32 tensor")
	}
	bytes := min(scratch.Bytes(), o.Dev.MaxBinding()) &^ 15
	if bytes == 0 {
		return engine.Binding{}, 0, fmt.Errorf("dct: scratch %q is empty", scratch.Buf.Label)
	}
	return engine.Binding{Buf: scratch.Buf, Offset: scratch.Offset, Size: bytes}, int(bytes / 16), nil
}

// halfVec4 is the aligned vec4 size of one work half for cols columns of an n-point FFT.
func halfVec4(n, cols int) int { return (n*cols + 15) &^ 15 }

// maxCols is the most columns a scratch of vec4s holds for FFT length n.
func maxCols(vec4s, n int) int {
	c := vec4s / (2 * n)
	for c > 0 && 2*halfVec4(n, c) > vec4s {
		c--
	}
	return c
}

// CompressScratch is the f32 elements of scratch Compress needs to process up to
// maxChannelsPerPass channels (of all matrices together, rounded up to whole quads of 4
// channels of one matrix) per chain of passes. maxChannelsPerPass <= 0 picks the most
// that fit DefaultScratchBytes. More scratch means fewer, larger dispatches; any scratch
// of at least one quad works.
func CompressScratch(p CompressParams, maxChannelsPerPass int) int {
	if p.Span < 1 || p.Kept < 1 || p.Channels < 1 || p.Batches < 1 {
		return 0
	}
	n := max(fftLen(p.Span), fftLen(p.Kept))
	return scratchFor(n, (p.Channels+3)/4*p.Batches, maxChannelsPerPass)
}

// DCTScratch is the f32 elements of scratch DCT2 and DCT3 need for length n and C channels.
func DCTScratch(n, channels, maxChannelsPerPass int) int {
	if n < 1 || channels < 1 {
		return 0
	}
	return scratchFor(fftLen(n), (channels+3)/4, maxChannelsPerPass)
}

func scratchFor(n, totalCols, maxChannels int) int {
	cols := totalCols
	if maxChannels > 0 {
		cols = min(cols, max(1, (maxChannels+3)/4))
	} else {
		cols = min(cols, max(1, maxCols(DefaultScratchBytes/16, n)))
	}
	return 4 * 2 * halfVec4(n, cols)
}

// fftLen is the FFT length a DCT of length n runs on.
func fftLen(n int) int {
	if n == 1 {
		return 1
	}
	if _, ok := planRadices(n); ok && !forceBluestein {
		return n
	}
	return 1 << bits.Len(uint(2*n-2))
}

// slices splits nb matrices of C channels into chains of at most cols columns.
func slices(nb, channels, cols int) []slice {
	quads := (channels + 3) / 4
	var out []slice
	switch {
	case quads*nb <= cols:
		out = append(out, slice{0, nb, 0, channels})
	case quads <= cols:
		per := cols / quads
		for b := 0; b < nb; b += per {
			out = append(out, slice{b, min(per, nb-b), 0, channels})
		}
	default:
		for b := 0; b < nb; b++ {
			for c := 0; c < channels; c += 4 * cols {
				out = append(out, slice{b, 1, c, min(channels, c+4*cols)})
			}
		}
	}
	return out
}

// group is a run of matrices bound as one range of the cache tensor.
type group struct {
	b0, nb  int
	binding engine.Binding
	base    int // element offset of matrix b0 in the binding
}

// groups splits the matrices of t into ranges that fit one storage binding; each
// matrix needs rows [0, used) bound.
func (o *Ops) groups(t *engine.Tensor, batches, stride, used int) ([]group, error) {
	eb := uint64(elemBytes(t.DType))
	rowBytes := uint64(t.Cols) * eb
	align := uint64(o.Dev.Limits.MinStorageBufferOffsetAlignment)
	if align == 0 {
		align = 256
	}
	limit := o.Dev.MaxBinding()
	if bindingLimit > 0 {
		limit = min(limit, bindingLimit)
	}
	var out []group
	for b := 0; b < batches; {
		start := t.Offset + uint64(b)*uint64(stride)*rowBytes
		aligned := start &^ (align - 1)
		n := 0
		var size uint64
		for b+n < batches {
			end := start + uint64(n)*uint64(stride)*rowBytes + uint64(used)*rowBytes
			s := (end - aligned + 3) &^ 3
			if s > limit {
				break
			}
			n, size = n+1, s
		}
		if n == 0 {
			return nil, fmt.Errorf("dct: %d rows of %d bytes of tensor %q exceed the device's storage binding limit of %d bytes; use fewer channels per matrix or a shorter cache",
				used, rowBytes, t.Buf.Label, limit)
		}
		out = append(out, group{b0: b, nb: n, binding: engine.Binding{Buf: t.Buf, Offset: aligned, Size: size}, base: int((start - aligned) / eb)})
		b += n
	}
	return out, nil
}

// Compress records the in-place FreqKV compression of p.Batches matrices of cache
// (f32 or f16 [>= Batches*BatchStride, Channels]): in each, rows [Sink, Sink+Span) become
// the Kept rows sqrt(m/L) * DCT-III_m(DCT-II_L(x)[0:m]), computed in float32, and the
// Recent rows after the span move up behind them. scratch is an f32 tensor of at least
// CompressScratch(p, ...) elements for some channel count (more: fewer dispatches).
// The cache must not be bound elsewhere in the same dispatches; the recorder orders
// everything after earlier work on it.
func (o *Ops) Compress(rec *engine.Recorder, cache *engine.Tensor, scratch *engine.Tensor, p CompressParams) error {
	if rec == nil {
		return fmt.Errorf("compress: recorder is nil")
	}
	return o.compress(rec, cache, scratch, p)
}

// PrepareCompress compiles every kernel and uploads every table Compress(_, cache,
// scratch, p) uses, without recording anything, so the first compression does not stall
// on pipeline creation (seconds on llvmpipe) and allocates nothing.
func (o *Ops) PrepareCompress(cache *engine.Tensor, scratch *engine.Tensor, p CompressParams) error {
	return o.compress(nil, cache, scratch, p)
}

func (o *Ops) compress(rec *engine.Recorder, cache *engine.Tensor, scratch *engine.Tensor, p CompressParams) error {
	if err := p.validate(cache); err != nil {
		return err
	}
	work, vec4s, err := o.workBinding(scratch)
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	a, err := getStage(o.Dev, p.Span, -1)
	if err != nil {
		return err
	}
	b, err := getStage(o.Dev, p.Kept, +1)
	if err != nil {
		return err
	}
	n := max(a.conv, b.conv)
	cols := maxCols(vec4s, n)
	if cols < 1 {
		return fmt.Errorf("compress: scratch of %d f32 is below the %d one quad of channels needs (CompressScratch)", vec4s*4, 4*2*halfVec4(n, 1))
	}
	used := p.Sink + p.Span + p.Recent
	groups, err := o.groups(cache, p.Batches, p.BatchStride, used)
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	f16 := cache.DType == engine.F16
	for _, g := range groups {
		for _, s := range slices(g.nb, p.Channels, cols) {
			c := &chain{o: o, rec: rec, f16: f16, work: work, bstride: p.BatchStride, channels: p.Channels,
				base: g.base, row0: p.Sink}
			c.wgx, c.wgy = workgroupShape(s.cols())
			c.half = halfVec4(n, s.cols())
			c.cur, c.next = 0, c.half
			if err := c.stageA(s, a, g.binding); err != nil {
				return err
			}
			mp := c.params(s)
			mp.n, mp.nb, mp.len, mp.kept = uint32(a.conv), uint32(b.conv), uint32(p.Span), uint32(p.Kept)
			mp.chirpa, mp.wa, mp.chirpb, mp.wb = uint32(a.chirpOff), uint32(a.wOff), uint32(b.chirpOff), uint32(b.wOff)
			scale := 1 / (2 * float64(p.Span))
			if p.EnergyScale {
				scale *= math.Sqrt(float64(p.Span) / float64(p.Kept))
			}
			mp.scale = float32(scale)
			if p.KeepHigh {
				mp.kfirst = uint32(p.Span - p.Kept)
			}
			if err := c.rows(s, dctVariant{entry: "mid", bla: a.blue, blb: b.blue}, mp, p.Kept/2+1+b.conv-p.Kept, g.binding, a, b); err != nil {
				return err
			}
			if err := c.stageB(s, b, g.binding); err != nil {
				return err
			}
		}
		if err := o.moveRecent(rec, g, cache.DType, p, work); err != nil {
			return err
		}
	}
	return nil
}

// moveRecent moves rows [S+L, S+L+R) of each matrix of the group to [S+m, S+m+R), in
// chunks of L-m rows so that no dispatch reads a row it also writes.
func (o *Ops) moveRecent(rec *engine.Recorder, g group, dt engine.DType, p CompressParams, work engine.Binding) error {
	shift := p.Span - p.Kept
	if p.Recent == 0 || shift == 0 {
		return nil
	}
	wordsPerRow, baseWords := p.Channels, g.base
	if dt == engine.F16 {
		wordsPerRow, baseWords = p.Channels/2, g.base/2
	}
	k, err := o.dctKernel(dctVariant{entry: "moverows", wgx: 64, wgy: 1})
	if err != nil {
		return err
	}
	for i := 0; i < p.Recent; i += shift {
		rows := min(shift, p.Recent-i)
		words := rows * wordsPerRow
		prm := dctParams{
			len: uint32(words), src: uint32((p.Sink + p.Span + i) * wordsPerRow), dst: uint32((p.Sink + p.Kept + i) * wordsPerRow),
			bstride: uint32(p.BatchStride * wordsPerRow), base: uint32(baseWords), batches: uint32(g.nb),
		}
		wg := ceilDiv(words, 64)
		x := min(wg, maxGroups)
		grid := [3]uint32{uint32(x), uint32(g.nb), uint32(ceilDiv(wg, x))}
		// work and the tables are unused: bind the smallest at hand.
		st, err := getStage(o.Dev, 1, -1)
		if err != nil {
			return err
		}
		if rec == nil {
			break // Prepare: compiled only
		}
		if err := rec.Dispatch(k, prm.words(), grid, g.binding, work, st.table.All(), st.table.All()); err != nil {
			return err
		}
	}
	return nil
}

func (o *Ops) dctCheck(what string, x, y, scratch *engine.Tensor, n, channels int) error {
	if n < 1 || channels < 1 {
		return fmt.Errorf("%s: length %d and %d channels must be positive", what, n, channels)
	}
	if err := need(what, x, engine.F32, n*channels); err != nil {
		return err
	}
	if err := need(what, y, engine.F32, n*channels); err != nil {
		return err
	}
	if x.Cols != channels || y.Cols != channels {
		return fmt.Errorf("%s: x and y need %d columns, have %d and %d", what, channels, x.Cols, y.Cols)
	}
	if x.Buf == y.Buf {
		return fmt.Errorf("%s: x and y must be different buffers", what)
	}
	if need := DCTScratch(n, channels, 4); scratch == nil || int(scratch.Bytes()/4) < need {
		return fmt.Errorf("%s: scratch needs at least %d f32 (DCTScratch)", what, need)
	}
	return nil
}

// DCT2 records y = orthonormal DCT-II of x along its rows (scipy dct(x, type=2,
// norm="ortho", axis=0)) for x, y f32 [L, C] in different buffers; scratch: DCTScratch.
func (o *Ops) DCT2(rec *engine.Recorder, x, y, scratch *engine.Tensor, L, C int) error {
	if err := o.dctCheck("dct2", x, y, scratch, L, C); err != nil {
		return err
	}
	a, err := getStage(o.Dev, L, -1)
	if err != nil {
		return err
	}
	return o.standalone(rec, x, y, scratch, a, C, func(c *chain, s slice, xb, yb engine.Binding) error {
		if err := c.stageA(s, a, xb); err != nil {
			return err
		}
		p := c.params(s)
		p.n, p.len = uint32(a.conv), uint32(L)
		p.chirpa, p.wa = uint32(a.chirpOff), uint32(a.wOff)
		p.scale = float32(math.Sqrt(2/float64(L)) / 2)
		return c.rows(s, dctVariant{entry: "dct2out", bla: a.blue}, p, L, yb, a, a)
	})
}

// DCT3 records y = orthonormal DCT-III of x along its rows (the inverse of DCT2) for
// x, y f32 [L, C] in different buffers; scratch: DCTScratch.
func (o *Ops) DCT3(rec *engine.Recorder, x, y, scratch *engine.Tensor, L, C int) error {
	if err := o.dctCheck("dct3", x, y, scratch, L, C); err != nil {
		return err
	}
	b, err := getStage(o.Dev, L, +1)
	if err != nil {
		return err
	}
	return o.standalone(rec, x, y, scratch, b, C, func(c *chain, s slice, xb, yb engine.Binding) error {
		p := c.params(s)
		p.nb, p.kept = uint32(b.conv), uint32(L)
		p.chirpb, p.wb = uint32(b.chirpOff), uint32(b.wOff)
		p.scale = float32(1 / float64(L))
		if err := c.rows(s, dctVariant{entry: "dct3in", blb: b.blue}, p, b.conv, xb, b, b); err != nil {
			return err
		}
		return c.stageB(s, b, yb)
	})
}

func (o *Ops) standalone(rec *engine.Recorder, x, y, scratch *engine.Tensor, st *stage, channels int,
	body func(c *chain, s slice, xb, yb engine.Binding) error) error {
	work, vec4s, err := o.workBinding(scratch)
	if err != nil {
		return err
	}
	cols := maxCols(vec4s, st.conv)
	xb, yb := x.Binding(), y.Binding()
	for _, s := range slices(1, channels, cols) {
		c := &chain{o: o, rec: rec, work: work, bstride: st.n, channels: channels}
		c.wgx, c.wgy = workgroupShape(s.cols())
		c.half = halfVec4(st.conv, s.cols())
		c.cur, c.next = 0, c.half
		if err := body(c, s, xb, yb); err != nil {
			return err
		}
	}
	return nil
}
