package shaders

import (
	"fmt"
	"strings"

	"github.com/freqkv/freqkv/engine"
)

// The chain of dispatches of dct.wgsl: a batch of columns through the FFT passes of a
// stage, the row-wise kernels between stages, and the kernel variants they compile.

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

// dctUniform is dct.wgsl's Params (see its comments for each field).
type dctUniform struct {
	n, ns, stride, tstep, goff, cols, quads, src, dst, len, kept, row0, bstride, ch, c0, c1,
	base, nb, twa, chirpa, filta, wa, chirpb, wb uint32
	scale                 float32
	batches, koff, kfirst uint32
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

func (c *chain) params(s slice) dctUniform {
	return dctUniform{
		cols: uint32(s.cols()), quads: uint32(s.quads()), src: uint32(c.cur), dst: uint32(c.next),
		row0: uint32(c.row0), bstride: uint32(c.bstride), ch: uint32(c.channels),
		c0: uint32(s.c0), c1: uint32(s.c1), base: uint32(c.base + s.b0*c.bstride*c.channels),
	}
}

func (c *chain) swap() { c.cur, c.next = c.next, c.cur }

// dispatch records one kernel launch; a chain without a recorder only compiles (Prepare).
func (c *chain) dispatch(k *engine.Kernel, p dctUniform, grid [3]uint32, cache engine.Binding, ta, tb *stage) error {
	if c.rec == nil {
		return nil
	}
	return c.rec.Dispatch(k, words(p), grid, cache, c.work, ta.table.All(), tb.table.All())
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
		maxGroups := c.o.knobs.groupLimit()
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
func (c *chain) rows(s slice, v dctVariant, p dctUniform, rows int, cache engine.Binding, ta, tb *stage) error {
	v.f16, v.wgx, v.wgy = c.f16, c.wgx, c.wgy
	k, err := c.o.dctKernel(v)
	if err != nil {
		return err
	}
	maxGroups := c.o.knobs.groupLimit()
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
