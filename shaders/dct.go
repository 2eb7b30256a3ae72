package shaders

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
)

// The standalone orthonormal DCT-II and DCT-III of dct.wgsl (the compressor's stages on
// their own, checked against scipy and the float64 reference).

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
	if need := o.knobs.dctScratch(n, channels, 4); scratch == nil || int(scratch.Bytes()/4) < need {
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
	a, err := o.stage(L, -1)
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
	b, err := o.stage(L, +1)
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
