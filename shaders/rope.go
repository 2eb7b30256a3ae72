package shaders

import (
	"fmt"
	"math"
	"strings"

	"github.com/freqkv/freqkv/engine"
)

const ropeWG = 64

// RopeParams describes a rotary embedding of [Rows, Heads*HeadDim] values.
// Pair i < RopeDim/2 turns by theta_i = pos/Scale * Base^(-2i/RopeDim);
// dims from RopeDim to HeadDim are left as they are.
type RopeParams struct {
	Rows, Heads, HeadDim, RopeDim int
	Base, Scale                   float64 // frequency base; linear scaling (1: none)
	NeoX                          bool    // split-half pairs (x[i], x[i+RopeDim/2]) instead of GGUF 'llama' adjacent pairs
	Inverse                       bool    // rotate by -theta (undo a rotation)
}

func checkRope(what string, headDim, ropeDim int, base, scale float64) error {
	if ropeDim < 2 || ropeDim%2 != 0 || ropeDim > headDim {
		return fmt.Errorf("%s: rope dim %d must be even, at least 2 and at most the head dim %d", what, ropeDim, headDim)
	}
	if !(base > 0) || math.IsInf(base, 0) || !(scale > 0) || math.IsInf(scale, 0) {
		return fmt.Errorf("%s: rope base %g and scale %g must be positive and finite", what, base, scale)
	}
	return nil
}

// ropeTurns bakes each pair's turns per position as 64-bit fixed point
// (see rope.wgsl) into a WGSL array constant.
func ropeTurns(ropeDim int, base, scale float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "array<u32, %d>(", ropeDim)
	for i := range ropeDim / 2 {
		turns := math.Pow(base, -2*float64(i)/float64(ropeDim)) / scale / (2 * math.Pi)
		frac := (turns - math.Floor(turns)) * (1 << 32) // whole turns don't matter
		hi := math.Floor(frac)
		lo := math.Floor((frac - hi) * (1 << 32))
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%du, %du", uint32(hi), uint32(lo))
	}
	b.WriteString(")")
	return b.String()
}

// ropeUniform is rope.wgsl's Params.
type ropeUniform struct {
	rows, heads, headDim uint32
	neox, inverse        uint32 // flags
}

// Rope records y = x rotated per row to the position pos[row] (U32 [Rows]).
// y must not share a buffer with x or pos.
func (o *Ops) Rope(rec *engine.Recorder, x, pos, y *engine.Tensor, p RopeParams) error {
	if p.Rows < 1 || p.Heads < 1 {
		return fmt.Errorf("rope: %d rows and %d heads, want at least 1 of each", p.Rows, p.Heads)
	}
	if err := checkRope("rope", p.HeadDim, p.RopeDim, p.Base, p.Scale); err != nil {
		return err
	}
	n := p.Rows * p.Heads * p.HeadDim
	if err := need("rope", x, engine.F32, n); err != nil {
		return err
	}
	if err := need("rope", pos, engine.U32, p.Rows); err != nil {
		return err
	}
	if err := need("rope", y, engine.F32, n); err != nil {
		return err
	}
	if y.Buf == x.Buf || y.Buf == pos.Buf {
		return fmt.Errorf("rope: output %q shares a buffer with an input; WebGPU forbids binding one buffer read-only and writable in a dispatch", y.Buf.Label)
	}
	k, err := o.kernel("rope.wgsl", "rope", engine.Constants{
		"WG":    u(ropeWG),
		"RD":    u(p.RopeDim),
		"TURNS": ropeTurns(p.RopeDim, p.Base, p.Scale),
	})
	if err != nil {
		return err
	}
	jobs := p.RopeDim/2 + p.HeadDim - p.RopeDim
	params := words(ropeUniform{rows: uint32(p.Rows), heads: uint32(p.Heads), headDim: uint32(p.HeadDim), neox: b2u(p.NeoX), inverse: b2u(p.Inverse)})
	return rec.Dispatch(k, params, engine.Grid(p.Rows*p.Heads*jobs, ropeWG), x.Binding(), pos.Binding(), y.Binding())
}

// RopeTable returns cos and sin of theta_i = pos/scale * base^(-2i/ropeDim)
// for pos < maxPos and i < ropeDim/2, computed in float64, as an f32
// [maxPos, ropeDim] table of interleaved (cos, sin) pairs: the table the
// attention kernel rotates keys and queries with.
func RopeTable(maxPos, ropeDim int, base float64, scale float64) []float32 {
	half := ropeDim / 2
	freq := make([]float64, half)
	for i := range freq {
		freq[i] = math.Pow(base, -2*float64(i)/float64(ropeDim)) / scale
	}
	out := make([]float32, maxPos*2*half)
	for pos := range maxPos {
		row := out[pos*2*half:]
		for i, f := range freq {
			s, c := math.Sincos(float64(pos) * f)
			row[2*i], row[2*i+1] = float32(c), float32(s)
		}
	}
	return out
}
