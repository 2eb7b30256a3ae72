package llama

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/model"
)

// ropeFrequencies returns each pair's angle per position and the magnitude
// cos and sin are scaled by, for every rope type, following ggml's
// rope_yarn: pair i's base frequency base^(-2i/d) is divided by its
// rope_freqs factor (Llama 3), then linear scaling divides it by the scale
// factor; YaRN instead blends the scaled (interpolated) and unscaled
// (extrapolated) frequency by a ramp over the pairs between the corrections
// for beta_fast and beta_slow rotations, and scales the magnitude by
// attn_factor * (1 + 0.1 ln(scale)). Every type stays linear in the
// position, so keys cached before RoPE rotate at attention time as before.
func ropeFrequencies(h model.HParams, factors []float64) (freq []float64, mscale float64, err error) {
	half := h.RopeDim / 2
	if factors != nil && len(factors) != half {
		return nil, 0, fmt.Errorf("rope_freqs.weight has %d factors for %d rotated pairs", len(factors), half)
	}
	freq = make([]float64, half)
	mscale = 1
	freqScale := 1 / h.RopeScale
	var lo, hi, ext float64
	if h.RopeScaling == "yarn" {
		y := h.Yarn
		d := float64(h.RopeDim)
		corr := func(rotations float64) float64 {
			return d * math.Log(float64(y.OrigContext)/(rotations*2*math.Pi)) / (2 * math.Log(h.RopeBase))
		}
		lo = max(0, math.Floor(corr(y.BetaFast)))
		hi = min(d-1, math.Ceil(corr(y.BetaSlow)))
		ext = y.ExtFactor
		mscale = y.AttnFactor
		if ext != 0 {
			mscale *= 1 + 0.1*math.Log(1/freqScale)
		}
	}
	if h.RopeAttnFactor != 0 {
		mscale *= h.RopeAttnFactor
	}
	for i := range freq {
		f := math.Pow(h.RopeBase, -2*float64(i)/float64(h.RopeDim))
		if factors != nil {
			if !(factors[i] > 0) || math.IsInf(factors[i], 0) {
				return nil, 0, fmt.Errorf("rope_freqs.weight: factor %d is %v, want a positive number", i, factors[i])
			}
			f /= factors[i]
		}
		interp := f * freqScale
		if h.RopeScaling == "yarn" && ext != 0 {
			ramp := 1 - math.Min(1, math.Max(0, (float64(i)-lo)/math.Max(0.001, hi-lo)))
			mix := ramp * ext
			freq[i] = interp*(1-mix) + f*mix
		} else {
			freq[i] = interp
		}
	}
	return freq, mscale, nil
}

// ropeTable is the attention kernel's table: for pos < maxPos, pair i's
// (cos, sin) of pos*freq[i], times mscale, in float64 then rounded to f32.
func ropeTable(maxPos int, freq []float64, mscale float64) []float32 {
	half := len(freq)
	out := make([]float32, maxPos*2*half)
	for pos := range maxPos {
		row := out[pos*2*half:]
		for i, f := range freq {
			s, c := math.Sincos(float64(pos) * f)
			row[2*i], row[2*i+1] = float32(c*mscale), float32(s*mscale)
		}
	}
	return out
}

// uploadRope fills the context's rope table for positions below maxPos.
// phi3's longrope takes its long factors when the context's positions reach
// past the original context, its short ones otherwise, as llama.cpp chooses
// by context size.
func (c *Context) uploadRope(maxPos int) error {
	factors := c.m.ropeFactors
	if c.m.H.LongRope {
		factors = c.m.ropeShort
		if maxPos > c.m.H.LongRopeContext {
			factors = c.m.ropeLong
		}
	}
	freq, mscale, err := ropeFrequencies(c.m.H, factors)
	if err != nil {
		return err
	}
	if err := c.rope.UploadF32(ropeTable(maxPos, freq, mscale)); err != nil {
		return err
	}
	if c.ropeLocal == nil {
		return nil
	}
	// Gemma 3's local layers: their own base, no scaling, no factors.
	first := 0
	for !c.m.H.LocalLayer(first) {
		first++
	}
	freq, mscale, err = ropeFrequencies(c.m.H.LayerRope(first), nil)
	if err != nil {
		return err
	}
	return c.ropeLocal.UploadF32(ropeTable(maxPos, freq, mscale))
}

// layerRope is the rope table layer i rotates with.
func (c *Context) layerRope(i int) *engine.Tensor {
	if c.ropeLocal != nil && c.m.H.LocalLayer(i) {
		return c.ropeLocal
	}
	return c.rope
}
