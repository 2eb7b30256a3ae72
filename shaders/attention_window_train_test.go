package shaders_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/shaders"
	"github.com/stretchr/testify/require"
)

// windowRef is the float64 window attention and its gradients, written from
// the definition: query t sees sinks j < min(S, t+1) (scored with qs) and
// rows [max(S, t+1-W), t] (scored with qa).
func windowRef(p shaders.WindowAttentionParams, qa, qs, k, v, dout []float32) (out, dqa, dqs, dk, dv []float64) {
	T, H, KVH, D := p.T, p.Heads, p.KVHeads, p.HeadDim
	G := H / KVH
	out = make([]float64, T*H*D)
	dqa, dqs = make([]float64, T*H*D), make([]float64, T*H*D)
	dk, dv = make([]float64, T*KVH*D), make([]float64, T*KVH*D)
	for t := range T {
		lo := max(p.Sink, t+1-p.Window)
		var keys []int
		for j := 0; j < min(p.Sink, t+1); j++ {
			keys = append(keys, j)
		}
		for j := lo; j <= t; j++ {
			keys = append(keys, j)
		}
		for h := range H {
			g := h / G
			q := func(j int) []float32 {
				if j < p.Sink {
					return qs[(t*H+h)*D : (t*H+h+1)*D]
				}
				return qa[(t*H+h)*D : (t*H+h+1)*D]
			}
			s := make([]float64, len(keys))
			m := math.Inf(-1)
			for i, j := range keys {
				for d := range D {
					s[i] += float64(q(j)[d]) * float64(k[(j*KVH+g)*D+d])
				}
				s[i] *= float64(p.Scale)
				m = max(m, s[i])
			}
			sum := 0.0
			for i := range s {
				s[i] = math.Exp(s[i] - m)
				sum += s[i]
			}
			dp := make([]float64, len(keys))
			dsum := 0.0
			for i, j := range keys {
				s[i] /= sum
				for d := range D {
					out[(t*H+h)*D+d] += s[i] * float64(v[(j*KVH+g)*D+d])
					dp[i] += float64(dout[(t*H+h)*D+d]) * float64(v[(j*KVH+g)*D+d])
				}
				dsum += s[i] * dp[i]
			}
			for i, j := range keys {
				ds := s[i] * (dp[i] - dsum) * float64(p.Scale)
				dq := dqa
				if j < p.Sink {
					dq = dqs
				}
				for d := range D {
					dq[(t*H+h)*D+d] += ds * float64(k[(j*KVH+g)*D+d])
					dk[(j*KVH+g)*D+d] += ds * float64(q(j)[d])
					dv[(j*KVH+g)*D+d] += s[i] * float64(dout[(t*H+h)*D+d])
				}
			}
		}
	}
	return
}

// TestWindowAttentionTrain: forward and every gradient of the window kernel
// equal the float64 definition (outputs poisoned with NaN first), for GQA,
// odd head dims, queries among the sinks and windows shorter than T.
func TestWindowAttentionTrain(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	for _, p := range []shaders.WindowAttentionParams{
		{T: 11, Heads: 4, KVHeads: 2, HeadDim: 6, Sink: 2, Window: 4},
		{T: 9, Heads: 3, KVHeads: 1, HeadDim: 5, Sink: 0, Window: 3},
		{T: 7, Heads: 2, KVHeads: 2, HeadDim: 8, Sink: 4, Window: 20},
		{T: 300, Heads: 2, KVHeads: 1, HeadDim: 128, Sink: 4, Window: 290}, // past llvmpipe's loop cap in one dispatch
	} {
		p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
		r := rand.New(rand.NewPCG(uint64(p.T), uint64(p.Sink)))
		rnd := func(n int) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = r.Float32()*2 - 1
			}
			return v
		}
		qn, kn := p.T*p.Heads*p.HeadDim, p.T*p.KVHeads*p.HeadDim
		qa, qs, k, v, dout := rnd(qn), rnd(qn), rnd(kn), rnd(kn), rnd(qn)
		ten := func(rows, cols int, x []float32) *engine.Tensor {
			tt, err := dev.NewTensor("w", engine.F32, rows, cols)
			require.NoError(t, err)
			t.Cleanup(tt.Release)
			if x == nil {
				x = make([]float32, rows*cols)
				for i := range x {
					x[i] = float32(math.NaN())
				}
			}
			require.NoError(t, tt.UploadF32(x))
			return tt
		}
		qw, kw := p.Heads*p.HeadDim, p.KVHeads*p.HeadDim
		tqa, tqs, tk, tv, tdout := ten(p.T, qw, qa), ten(p.T, qw, qs), ten(p.T, kw, k), ten(p.T, kw, v), ten(p.T, qw, dout)
		out, stats := ten(p.T, qw, nil), ten(p.T, 2*p.Heads, nil)
		dqa, dqs, dkv := ten(p.T, qw, nil), ten(p.T, qw, nil), ten(2*p.T, kw, nil)
		rec := dev.NewRecorder()
		require.NoError(t, ops.WindowAttentionTrain(rec, tqa, tqs, tk, tv, out, stats, p))
		require.NoError(t, ops.WindowAttentionTrainBackward(rec, tqa, tqs, tk, tv, out, tdout, stats, dqa, dqs, dkv, p))
		require.NoError(t, rec.SubmitAndWait())
		wOut, wDqa, wDqs, wDk, wDv := windowRef(p, qa, qs, k, v, dout)
		for _, c := range []struct {
			name string
			got  *engine.Tensor
			want []float64
		}{{"out", out, wOut}, {"dqa", dqa, wDqa}, {"dqs", dqs, wDqs}, {"dk and dv", dkv, append(wDk, wDv...)}} {
			got, err := c.got.ReadF32()
			require.NoError(t, err)
			for i, w := range c.want {
				require.InDelta(t, w, float64(got[i]), 2e-6*(1+math.Abs(w)), "%+v %s[%d]", p, c.name, i)
			}
		}
	}
}
