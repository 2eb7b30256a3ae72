package cpuref

import (
	"math"

	"github.com/freqkv/freqkv/model"
)

// ropeParams is what RoPE needs from the hyper-parameters and weights.
type ropeParams struct {
	headDim int     // values per head
	dim     int     // leading values of each head that are rotated, even; the rest pass through
	base    float64 // frequency base
	scale   float64 // scaling factor (linear and YaRN); 1 for none
	yarn    bool    // YaRN scaling with the parameters below
	y       model.Yarn
	factors []float64 // per-pair frequency divisors (Llama 3's rope_freqs, phi3's longrope), nil for none
	attn    float64   // rope.scaling.attn_factor on cos and sin; 0 for none
	neox    bool      // pairs (i, i+dim/2) (qwen2) instead of adjacent pairs (2i, 2i+1) (llama)
}

// newRopeParams is the rope of a session whose positions stay below positions: phi3's
// longrope uses its long factors only when they pass the original context.
func newRopeParams(m *Model, positions int) ropeParams {
	hp := m.HP
	factors := m.RopeFactors
	if hp.LongRope {
		factors = m.RopeShort
		if positions > hp.LongRopeContext {
			factors = m.RopeLong
		}
	}
	return ropeParams{headDim: hp.HeadDim(), dim: hp.RopeDim, base: hp.RopeBase, scale: hp.RopeScale,
		yarn: hp.RopeScaling == "yarn", y: hp.Yarn, factors: factors, attn: hp.RopeAttnFactor, neox: hp.RopeNeoX}
}

// angle is pair i's rotation at position pos, and the factor on cos and sin, as ggml's
// rope_yarn computes them (ggml_rope_ext with freq_scale = 1/scale): the unscaled angle
// pos * base^(-2i/dim) / factor_i is divided by scale (linear), or for YaRN blended with its
// scaled self by a ramp that is 1 for pairs turning fewer than beta_fast times over the
// original context and 0 for those turning more than beta_slow times (mixed by ext_factor),
// with magnitude attn_factor * (1 + 0.1 ln(scale)).
func (p ropeParams) angle(pos, i int) (theta, mag float64) {
	extrap := float64(pos) * math.Pow(p.base, -2*float64(i)/float64(p.dim))
	if p.factors != nil {
		extrap /= p.factors[i]
	}
	interp := extrap / p.scale
	if !p.yarn {
		return interp, 1
	}
	mag = p.y.AttnFactor
	if p.y.ExtFactor == 0 {
		return interp, mag
	}
	// corrDim is the pair index at which a pair turns `rotations` times over the original context.
	corrDim := func(rotations float64) float64 {
		return float64(p.dim) * math.Log(float64(p.y.OrigContext)/(rotations*2*math.Pi)) / (2 * math.Log(p.base))
	}
	low := math.Max(0, math.Floor(corrDim(p.y.BetaFast)))
	high := math.Min(float64(p.dim-1), math.Ceil(corrDim(p.y.BetaSlow)))
	t := (float64(i) - low) / math.Max(0.001, high-low)
	ramp := 1 - math.Min(1, math.Max(0, t))
	mix := ramp * p.y.ExtFactor
	return interp*(1-mix) + extrap*mix, mag * (1 + 0.1*math.Log(p.scale))
}

// rope returns a copy of x (whole heads) with each head rotated to position pos by the
// angles of p.angle, cos and sin scaled by its magnitude (for plain RoPE: llama2.c's run.c).
func rope(x []float64, pos int, p ropeParams) []float64 {
	out := append([]float64(nil), x...)
	half := p.dim / 2
	for i := range half {
		theta, mag := p.angle(pos, i)
		if p.attn != 0 {
			mag *= p.attn
		}
		sin, cos := math.Sincos(theta)
		sin, cos = sin*mag, cos*mag
		a, b := 2*i, 2*i+1
		if p.neox {
			a, b = i, i+half
		}
		for head := 0; head < len(out); head += p.headDim {
			x0, x1 := out[head+a], out[head+b]
			out[head+a] = x0*cos - x1*sin
			out[head+b] = x0*sin + x1*cos
		}
	}
	return out
}

// headNorm RMS-normalises each head of x (heads*headDim,) with the weight w (headDim,):
// qwen3's Q/K norms. A nil w returns x.
func headNorm(x, w []float64, headDim int, eps float64) []float64 {
	if w == nil {
		return x
	}
	out := make([]float64, 0, len(x))
	for h := 0; h < len(x); h += headDim {
		out = append(out, rmsnorm(x[h:h+headDim], w, eps)...)
	}
	return out
}
