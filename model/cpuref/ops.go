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

// geglu: gelu(gate) * up, both (ffn,), GELU in its tanh approximation
// 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) (Gemma).
func geglu(gate, up []float64) []float64 {
	out := make([]float64, len(gate))
	for i, g := range gate {
		out[i] = 0.5 * g * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(g+0.044715*g*g*g))) * up[i]
	}
	return out
}

// softcap: x = c * tanh(x / c) in place (Gemma 2); nothing for c = 0.
func softcap(x []float64, c float64) {
	if c == 0 {
		return
	}
	for i, v := range x {
		x[i] = c * math.Tanh(v/c)
	}
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
