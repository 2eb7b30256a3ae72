package cpuref

import "math"

// rmsnorm: out = x / sqrt(mean(x^2) + eps) * weight, all (n,).
func rmsnorm(x, weight []float64, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	scale := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v * scale * weight[i]
	}
	return out
}

// matmul: W (d,n) @ x (n,) -> out (d,), plus bias (d,) when it is not nil.
func matmul(w, x, bias []float64) []float64 {
	n := len(x)
	out := make([]float64, len(w)/n)
	for i := range out {
		var sum float64
		for j, v := range w[i*n : (i+1)*n] {
			sum += v * x[j]
		}
		if bias != nil {
			sum += bias[i]
		}
		out[i] = sum
	}
	return out
}

// add: x += y, both (n,).
func add(x, y []float64) {
	for i, v := range y {
		x[i] += v
	}
}

// swiglu: silu(gate) * up, both (ffn,); silu(g) = g * sigmoid(g).
func swiglu(gate, up []float64) []float64 {
	out := make([]float64, len(gate))
	for i, g := range gate {
		out[i] = g / (1 + math.Exp(-g)) * up[i]
	}
	return out
}

// softmax turns x (n,) into probabilities in place, shifted by its maximum for stability.
func softmax(x []float64) {
	maxV := math.Inf(-1)
	for _, v := range x {
		maxV = math.Max(maxV, v)
	}
	var sum float64
	for i, v := range x {
		x[i] = math.Exp(v - maxV)
		sum += x[i]
	}
	for i := range x {
		x[i] /= sum
	}
}

// ropeParams is what RoPE needs from the hyper-parameters.
type ropeParams struct {
	headDim int     // values per head
	dim     int     // leading values of each head that are rotated, even; the rest pass through
	base    float64 // frequency base
	scale   float64 // linear scaling: positions are divided by it (1 for none)
	neox    bool    // pairs (i, i+dim/2) (qwen2) instead of adjacent pairs (2i, 2i+1) (llama)
}

// rope returns a copy of x (whole heads) with each head rotated to position pos: pair i of
// dim/2 turns by the angle (pos/scale) * base^(-2i/dim), as llama.cpp's ggml_rope_ext with
// freq_scale = 1/scale (and llama2.c's run.c, where dim = head_dim and scale = 1).
func rope(x []float64, pos int, p ropeParams) []float64 {
	out := append([]float64(nil), x...)
	half := p.dim / 2
	for i := range half {
		angle := float64(pos) / p.scale * math.Pow(p.base, -2*float64(i)/float64(p.dim))
		sin, cos := math.Sincos(angle)
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
