package trainref

import (
	"math"

	"github.com/freqkv/freqkv/freqkv"
)

// node is one vector of the computation: its value and the gradient of the loss with respect
// to it. A nil g marks a frozen input whose gradient nobody wants; ops skip it.
type node struct {
	v, g []float64
}

// tape records, for every op of the forward pass, a closure that carries its output's
// gradient back to its inputs. Running them in reverse order is reverse-mode differentiation.
type tape struct {
	back []func()
}

// value returns a new intermediate node holding v, with a zero gradient.
func (t *tape) value(v []float64) *node { return &node{v: v, g: make([]float64, len(v))} }

// record adds an op's backward closure.
func (t *tape) record(f func()) { t.back = append(t.back, f) }

// backward runs the recorded closures last to first.
func (t *tape) backward() {
	for i := len(t.back) - 1; i >= 0; i-- {
		t.back[i]()
	}
}

// lora is an optional low-rank update of a linear map: W' = W + scale * B·A with A (r, in)
// and B (out, r), row-major.
type loraUpdate struct {
	a, b  *node
	rank  int
	scale float64 // alpha / rank
}

// linear: y = W (out,in) @ x (in,) + bias (out,) + scale * B @ (A @ x), bias and l optional.
func (t *tape) linear(w *node, x *node, bias *node, l *loraUpdate) *node {
	in := len(x.v)
	out := len(w.v) / in
	y := make([]float64, out)
	for i := range y {
		var s float64
		for j, wv := range w.v[i*in : (i+1)*in] {
			s += wv * x.v[j]
		}
		if bias != nil {
			s += bias.v[i]
		}
		y[i] = s
	}
	var u []float64 // A @ x (rank,)
	if l != nil {
		u = make([]float64, l.rank)
		for k := range u {
			var s float64
			for j, av := range l.a.v[k*in : (k+1)*in] {
				s += av * x.v[j]
			}
			u[k] = s
		}
		for i := range y {
			var s float64
			for k, bv := range l.b.v[i*l.rank : (i+1)*l.rank] {
				s += bv * u[k]
			}
			y[i] += l.scale * s
		}
	}
	n := t.value(y)
	t.record(func() {
		dy := n.g
		for i, d := range dy {
			if d == 0 {
				continue
			}
			row := w.v[i*in : (i+1)*in]
			for j, wv := range row {
				x.g[j] += d * wv
			}
			if w.g != nil {
				gr := w.g[i*in : (i+1)*in]
				for j, xv := range x.v {
					gr[j] += d * xv
				}
			}
			if bias != nil && bias.g != nil {
				bias.g[i] += d
			}
		}
		if l == nil {
			return
		}
		du := make([]float64, l.rank) // scale * Bᵀ dy
		for i, d := range dy {
			for k, bv := range l.b.v[i*l.rank : (i+1)*l.rank] {
				du[k] += l.scale * d * bv
				if l.b.g != nil {
					l.b.g[i*l.rank+k] += l.scale * d * u[k]
				}
			}
		}
		for k, d := range du {
			for j, av := range l.a.v[k*in : (k+1)*in] {
				x.g[j] += d * av
				if l.a.g != nil {
					l.a.g[k*in+j] += d * x.v[j]
				}
			}
		}
	})
	return n
}

// row returns row i (width wide) of a table, e.g. a token's embedding.
func (t *tape) row(table *node, i, width int) *node {
	n := t.value(append([]float64(nil), table.v[i*width:(i+1)*width]...))
	t.record(func() {
		if table.g == nil {
			return
		}
		for j, d := range n.g {
			table.g[i*width+j] += d
		}
	})
	return n
}

// rmsnorm: y = x / sqrt(mean(x²) + eps) * w.
func (t *tape) rmsnorm(x, w *node, eps float64) *node {
	var ss float64
	for _, v := range x.v {
		ss += v * v
	}
	nf := float64(len(x.v))
	s := 1 / math.Sqrt(ss/nf+eps)
	y := make([]float64, len(x.v))
	for i, v := range x.v {
		y[i] = v * s * w.v[i]
	}
	n := t.value(y)
	t.record(func() {
		// dy_i/dx_j = s w_i δij - w_i x_i x_j s³ / n
		var dot float64
		for i, d := range n.g {
			dot += d * w.v[i] * x.v[i]
		}
		for i, d := range n.g {
			x.g[i] += s*w.v[i]*d - x.v[i]*s*s*s*dot/nf
			if w.g != nil {
				w.g[i] += d * x.v[i] * s
			}
		}
	})
	return n
}

// add: z = x + y.
func (t *tape) add(x, y *node) *node {
	z := make([]float64, len(x.v))
	for i := range z {
		z[i] = x.v[i] + y.v[i]
	}
	n := t.value(z)
	t.record(func() {
		for i, d := range n.g {
			x.g[i] += d
			y.g[i] += d
		}
	})
	return n
}

// swiglu: y = silu(gate) * up, silu(g) = g * sigmoid(g).
func (t *tape) swiglu(gate, up *node) *node {
	y := make([]float64, len(gate.v))
	for i, g := range gate.v {
		y[i] = g / (1 + math.Exp(-g)) * up.v[i]
	}
	n := t.value(y)
	t.record(func() {
		for i, d := range n.g {
			g := gate.v[i]
			sig := 1 / (1 + math.Exp(-g))
			gate.g[i] += d * up.v[i] * sig * (1 + g*(1-sig))
			up.g[i] += d * g * sig
		}
	})
	return n
}

// rope rotates each head of x (whole heads of p.headDim) to position pos; the backward pass
// rotates the gradient back by the same angle.
func (t *tape) rope(x *node, pos int, p ropeParams) *node {
	n := t.value(rotate(x.v, float64(pos), p))
	t.record(func() {
		g := rotate(n.g, -float64(pos), p)
		for i, d := range g {
			x.g[i] += d
		}
	})
	return n
}

// rotate returns x with pair i of each head turned by pos/scale * base^(-2i/dim): adjacent
// pairs (2i, 2i+1) for llama, (i, i+dim/2) for NeoX; values past dim pass through.
func rotate(x []float64, pos float64, p ropeParams) []float64 {
	out := append([]float64(nil), x...)
	half := p.dim / 2
	for i := range half {
		sin, cos := math.Sincos(pos / p.scale * math.Pow(p.base, -2*float64(i)/float64(p.dim)))
		a, b := 2*i, 2*i+1
		if p.neox {
			a, b = i, i+half
		}
		for h := 0; h < len(out); h += p.headDim {
			x0, x1 := out[h+a], out[h+b]
			out[h+a] = x0*cos - x1*sin
			out[h+b] = x0*sin + x1*cos
		}
	}
	return out
}

// ropeParams is what RoPE needs from the hyper-parameters.
type ropeParams struct {
	headDim int
	dim     int // leading values of each head that rotate
	base    float64
	scale   float64 // positions are divided by it
	neox    bool
}

// attention of one rotated query q (heads*hd,) over rotated keys and values (kv_heads*hd,
// each): per query head h (reading kv head h/(heads/kv_heads)), softmax(q·k/sqrt(hd)) @ v.
func (t *tape) attention(q *node, keys, values []*node, heads, kvHeads, hd int) *node {
	scale := 1 / math.Sqrt(float64(hd))
	group := heads / kvHeads
	probs := make([][]float64, heads) // kept for the backward pass
	out := make([]float64, len(q.v))
	for h := range heads {
		qh := q.v[h*hd : (h+1)*hd]
		kv := (h / group) * hd
		p := make([]float64, len(keys))
		maxS := math.Inf(-1)
		for j, k := range keys {
			var dot float64
			for i, qi := range qh {
				dot += qi * k.v[kv+i]
			}
			p[j] = dot * scale
			maxS = math.Max(maxS, p[j])
		}
		var sum float64
		for j := range p {
			p[j] = math.Exp(p[j] - maxS)
			sum += p[j]
		}
		oh := out[h*hd : (h+1)*hd]
		for j, v := range values {
			p[j] /= sum
			for i := range oh {
				oh[i] += p[j] * v.v[kv+i]
			}
		}
		probs[h] = p
	}
	n := t.value(out)
	t.record(func() {
		for h := range heads {
			qh := q.v[h*hd : (h+1)*hd]
			kv := (h / group) * hd
			do := n.g[h*hd : (h+1)*hd]
			p := probs[h]
			dp := make([]float64, len(p))
			var mean float64 // Σ p_j dp_j
			for j, v := range values {
				for i, d := range do {
					dp[j] += d * v.v[kv+i]
					v.g[kv+i] += p[j] * d
				}
				mean += p[j] * dp[j]
			}
			for j, k := range keys {
				ds := p[j] * (dp[j] - mean) * scale
				for i := range qh {
					q.g[h*hd+i] += ds * k.v[kv+i]
					k.g[kv+i] += ds * qh[i]
				}
			}
		}
	})
	return n
}

// compress is FreqKV's resampling of a span of L rows to m rows, each channel independently:
// y = sqrt(m/L) * DCT-III_m(DCT-II_L(x)[:m]). Its adjoint, which carries the gradient back,
// is sqrt(m/L) * DCT-III_L(zero-pad_L(DCT-II_m(dy))).
func (t *tape) compress(rows []*node, m int) []*node {
	L, c := len(rows), len(rows[0].v)
	gain := math.Sqrt(float64(m) / float64(L))
	out := make([]*node, m)
	for i := range out {
		out[i] = t.value(make([]float64, c))
	}
	col := make([]float64, L)
	for ch := range c {
		for i, r := range rows {
			col[i] = r.v[ch]
		}
		y := freqkv.DCT3Ortho(freqkv.DCT2Ortho(col)[:m])
		for i, o := range out {
			o.v[ch] = gain * y[i]
		}
	}
	t.record(func() {
		dy := make([]float64, m)
		for ch := range c {
			for i, o := range out {
				dy[i] = o.g[ch]
			}
			padded := make([]float64, L)
			copy(padded, freqkv.DCT2Ortho(dy))
			dx := freqkv.DCT3Ortho(padded)
			for i, r := range rows {
				r.g[ch] += gain * dx[i]
			}
		}
	})
	return out
}

// nll returns -log softmax(logits)[target] and records its gradient, weight * (softmax - onehot),
// on the tape (weight is d loss / d nll, e.g. 1/count for a mean).
func (t *tape) nll(logits *node, target int, weight float64) float64 {
	maxL := math.Inf(-1)
	for _, v := range logits.v {
		maxL = math.Max(maxL, v)
	}
	var sum float64
	for _, v := range logits.v {
		sum += math.Exp(v - maxL)
	}
	lse := maxL + math.Log(sum)
	t.record(func() {
		for i, v := range logits.v {
			logits.g[i] += weight * math.Exp(v-lse)
		}
		logits.g[target] -= weight
	})
	return lse - logits.v[target]
}
