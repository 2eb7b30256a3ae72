package shaders

import (
	"fmt"
	"math"
	"strings"
)

// The WGSL generator of dct.wgsl's FFT passes: straight-line butterflies of one radix
// and direction, spliced into the shader at //@CODELET.

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
