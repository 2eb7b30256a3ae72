package train

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/shaders"
)

// recorder runs a list of recording steps, stopping at the first error.
type recorder struct {
	rec   *engine.Recorder
	err   error
	t     *Trainer
	waits int // host waits for the GPU
}

func (t *Trainer) newRecorder() *recorder {
	r := &recorder{rec: t.dev.NewRecorder(), t: t}
	r.rec.Profile = t.Profile
	return r
}

// phase names the work recorded next in a profile ("forward", "recompute",
// ...). When profiling, it first submits what is recorded so far, so a
// profile's timestamp queries never run out within one phase.
func (r *recorder) phase(name string) {
	p := r.t.Profile
	if p == nil || r.err != nil || p.Phase == name+"/" {
		return
	}
	r.wait()
	p.Phase = name + "/"
}

// wait submits what is recorded and waits for it (readbacks are filled).
func (r *recorder) wait() {
	if r.err != nil {
		return
	}
	r.waits++
	if err := r.rec.SubmitAndWait(); err != nil {
		r.err = err
	}
}

// finish submits and waits for the rest of the recording, adds its counts
// to the trainer's and returns the first error (nothing is submitted
// after an error in recording).
func (r *recorder) finish() error {
	if r.err != nil {
		r.rec.Discard()
	} else {
		r.wait()
	}
	c := &r.t.counts
	c.Dispatches += r.rec.Dispatches
	c.Submits += r.rec.Submits
	c.Waits += r.waits
	return r.err
}

func (r *recorder) do(what string, f func() error) {
	if r.err != nil {
		return
	}
	if err := f(); err != nil {
		r.err = fmt.Errorf("%s: %w", what, err)
	}
}

// copyRows records dst rows [d0, d0+n) = src rows [s0, s0+n), both f32
// with cols columns.
func (r *recorder) copyRows(src *engine.Tensor, s0 int, dst *engine.Tensor, d0, n, cols int) {
	if n <= 0 {
		return
	}
	r.do("copy rows", func() error {
		rb := uint64(4 * cols)
		return r.rec.Copy(src.Buf, src.Offset+uint64(s0)*rb, dst.Buf, dst.Offset+uint64(d0)*rb, uint64(n)*rb)
	})
}

func (t *Trainer) ropeParams(rows, heads int, inverse bool) shaders.RopeParams {
	h := t.h
	return shaders.RopeParams{Rows: rows, Heads: heads, HeadDim: h.HeadDim(), RopeDim: h.RopeDim,
		Base: h.RopeBase, Scale: h.RopeScale, NeoX: h.RopeNeoX, Inverse: inverse}
}

func (t *Trainer) attnParams(s Segment) shaders.TrainAttentionParams {
	h := t.h
	return shaders.TrainAttentionParams{T: s.Tokens, P: s.Rows, Heads: h.Heads, KVHeads: h.KVHeads, HeadDim: h.HeadDim(),
		Scale: float32(1 / sqrtf(float64(h.HeadDim())))}
}

func (t *Trainer) windowParams(n int) shaders.WindowAttentionParams {
	h := t.h
	return shaders.WindowAttentionParams{T: n, Heads: h.Heads, KVHeads: h.KVHeads, HeadDim: h.HeadDim(),
		Sink: t.sched.Sink, Window: t.sched.Window, Scale: float32(1 / sqrtf(float64(h.HeadDim())))}
}

// project records y = x·Wᵀ (+ bias) (+ scale·x·Aᵀ·Bᵀ, keeping x·Aᵀ in a.u).
func (t *Trainer) project(r *recorder, a *acts, l, target int, x, y *engine.Tensor, n int) {
	lt := t.base.Layers[l]
	w := t.weight(l, target)
	bias := [numTargets]*engine.Tensor{lt.Bq, lt.Bk, lt.Bv, nil}[target]
	r.do(targetNames[target], func() error {
		return t.ops.MatMul(r.rec, x, w, y, n, shaders.MatMulOptions{Bias: bias, Accumulate: target == TargetO})
	})
	if p := t.lora[l][target]; p.A != nil {
		r.do(targetNames[target]+" lora", func() error {
			return t.ops.LoRAForward(r.rec, x, p.A.T(), p.B.T(), a.u[target], y, n, t.cfg.Rank, t.scale)
		})
	}
}

// projectBack records dx (+)= dy·W (+ the LoRA path, accumulating its
// gradients); x and a.u are the forward's input and x·Aᵀ.
func (t *Trainer) projectBack(r *recorder, a *acts, l, target int, x, dy, dx *engine.Tensor, n int, accumulate bool) {
	r.do(targetNames[target]+" backward", func() error {
		return t.ops.MatMulBackwardX(r.rec, dy, t.weight(l, target), dx, n, accumulate)
	})
	t.weightGrad(r, l, target, dy, x, n)
	if p := t.lora[l][target]; p.A != nil {
		r.do(targetNames[target]+" lora backward", func() error {
			return t.ops.LoRABackward(r.rec, x, a.u[target], dy, p.A.T(), p.B.T(), p.A.Grad, p.B.Grad, t.b.du, dx, n, t.cfg.Rank, t.scale)
		})
	}
}

// weightGrad records dW += dyᵀ·x for block l's matrix i when it is trained whole.
func (t *Trainer) weightGrad(r *recorder, l, i int, dy, x *engine.Tensor, n int) {
	if p := t.full[l][i]; p != nil {
		r.do(matNames[i]+" weight grad", func() error { return t.ops.MatMulBackwardW(r.rec, dy, x, p.Grad, n) })
	}
}

// layerForward records layer l over segment g into its activation set, the
// cache's prefix rows already in place (forward: the live cache; backward:
// the restored state): input rows from the checkpoint, the segment's K/V
// stored at cache rows [P, P+T), attention, and the FFN, whose output is
// left in xout (a.xmid keeps the residual between attention and FFN). A
// recompute for the backward stops at the FFN's hidden activations.
func (t *Trainer) layerForward(r *recorder, g, l int, recompute bool) {
	h, b, o := t.h, &t.b, t.ops
	a := t.acts(g, l)
	s := t.sched.Segments[g]
	n, kvd := s.Tokens, h.KVDim()
	eps := float32(h.RMSEps)
	r.copyRows(b.ckpt[l], s.Start, b.xin, 0, n, h.Dim)
	r.copyRows(b.ckpt[l], s.Start, a.xmid, 0, n, h.Dim)
	r.do("attention norm", func() error { return o.RMSNorm(r.rec, b.xin, t.attnNormW(l), a.xb, n, h.Dim, eps) })
	t.project(r, a, l, TargetQ, a.xb, b.q, n)
	t.project(r, a, l, TargetK, a.xb, b.k, n)
	t.project(r, a, l, TargetV, a.xb, b.v, n)
	r.copyRows(b.k, 0, b.kc[l], s.Rows, n, kvd)
	r.copyRows(b.v, 0, b.vc[l], s.Rows, n, kvd)
	all := s.Rows + n
	if a.vc != nil {
		r.copyRows(b.vc[l], 0, a.vc, 0, all, kvd)
	}
	vc := t.values(a, l)
	r.do("rope q", func() error { return o.Rope(r.rec, b.q, b.posQ[g], a.qrot, t.ropeParams(n, h.Heads, false)) })
	r.do("rope k", func() error { return o.Rope(r.rec, b.kc[l], b.posRow, a.krot, t.ropeParams(all, h.KVHeads, false)) })
	if t.sched.Window > 0 {
		r.do("rope sink q", func() error { return o.Rope(r.rec, b.q, b.posSink, a.qsink, t.ropeParams(n, h.Heads, false)) })
		r.do("window attention", func() error {
			return o.WindowAttentionTrain(r.rec, a.qrot, a.qsink, a.krot, vc, a.att, a.stats, t.windowParams(n))
		})
	} else {
		r.do("attention", func() error {
			return o.AttentionTrain(r.rec, a.qrot, a.krot, vc, a.att, a.stats, t.attnParams(s))
		})
	}
	t.project(r, a, l, TargetO, a.att, a.xmid, n)
	r.do("ffn norm", func() error { return o.RMSNorm(r.rec, a.xmid, t.ffnNormW(l), a.xb2, n, h.Dim, eps) })
	r.do("gate", func() error { return o.MatMul(r.rec, a.xb2, t.weight(l, MatGate), a.gate, n, shaders.MatMulOptions{}) })
	r.do("up", func() error { return o.MatMul(r.rec, a.xb2, t.weight(l, MatUp), a.up, n, shaders.MatMulOptions{}) })
	r.do("swiglu", func() error { return o.SwiGLU(r.rec, a.gate, a.up, a.hidden, n*h.FFN) })
	if recompute {
		return // the backward needs the FFN's inputs, not its output
	}
	r.copyRows(a.xmid, 0, b.xout, 0, n, h.Dim)
	r.do("down", func() error {
		return o.MatMul(r.rec, a.hidden, t.weight(l, MatDown), b.xout, n, shaders.MatMulOptions{Accumulate: true})
	})
}

// forward records the grouped forward of the sequence in b.ids: every
// layer's input into the checkpoints, FreqKV's cache states into the
// snapshots, compressions between segments.
func (t *Trainer) forward(r *recorder) {
	h, b := t.h, &t.b
	T := t.cfg.SeqLen
	r.phase("forward")
	r.do("embedding", func() error { return t.ops.Embedding(r.rec, b.ids, t.embTable(), b.ckpt[0], T) })
	for g, s := range t.sched.Segments {
		for l := 0; l < h.Layers; l++ {
			if g > 0 && b.snapK != nil && b.snapK[l] != nil {
				r.copyRows(b.kc[l], 0, b.snapK[l], g*s.Rows, s.Rows, h.KVDim())
				r.copyRows(b.vc[l], 0, b.snapV[l], g*s.Rows, s.Rows, h.KVDim())
			}
			t.layerForward(r, g, l, false)
			r.copyRows(b.xout, 0, b.ckpt[l+1], s.Start, s.Tokens, h.Dim)
		}
		if s.Compress {
			// every layer's K and V in one call
			r.do("compress", func() error { return t.ops.Compress(r.rec, b.kv, b.compScratch, t.compressParams()) })
		}
	}
}

// head records the classifier over every token: the NLL into b.nll and,
// when backward, the gradient of the final residual into b.dxf (and of the
// output norm and a tied trainable embedding). scale multiplies dlogits.
func (t *Trainer) head(r *recorder, scale float32, backward bool) {
	h, b, o := t.h, &t.b, t.ops
	T, hr := t.cfg.SeqLen, b.headRows
	eps := float32(h.RMSEps)
	for r0 := 0; r0 < T; r0 += hr {
		n := min(hr, T-r0)
		r.phase("head")
		r.copyRows(b.ckpt[h.Layers], r0, b.hx, 0, n, h.Dim)
		r.do("output norm", func() error { return o.RMSNorm(r.rec, b.hx, t.outNormW(), b.hn, n, h.Dim, eps) })
		r.do("output", func() error { return o.MatMul(r.rec, b.hn, t.outWeight(), b.logits, n, shaders.MatMulOptions{}) })
		r.do("loss", func() error {
			return o.CrossEntropy(r.rec, b.logits, vec(b.targets, r0, n), vec(b.nll, r0, n), n, h.Vocab, scale)
		})
		if !backward {
			continue
		}
		r.phase("head backward")
		if h.TiedOutput && t.embd != nil {
			r.do("output weight grad", func() error { return o.MatMulBackwardW(r.rec, b.logits, b.hn, t.embd.Grad, n) })
		} else if t.outFull != nil {
			r.do("output weight grad", func() error { return o.MatMulBackwardW(r.rec, b.logits, b.hn, t.outFull.Grad, n) })
		}
		r.do("output backward", func() error { return o.MatMulBackwardX(r.rec, b.logits, t.outWeight(), b.dh, n, false) })
		r.do("output norm backward", func() error {
			return o.RMSNormBackward(r.rec, b.hx, t.outNormW(), b.dh, b.hn, t.gradOrDummy(t.outNorm), b.inv, n, h.Dim, eps, false)
		})
		r.copyRows(b.hn, 0, b.dxf, r0, n, h.Dim)
	}
}

// vec is elements [off, off+n) of a one-row tensor (off*4 must be a
// multiple of the binding alignment: head chunks are multiples of 64 rows).
func vec(t *engine.Tensor, off, n int) *engine.Tensor {
	return &engine.Tensor{Buf: t.Buf, Offset: t.Offset + uint64(4*off), DType: t.DType, Rows: 1, Cols: n}
}

// backward records the gradient of every trainable tensor (accumulated
// into Param.Grad) for the sequence whose forward and head ran last.
func (t *Trainer) backward(r *recorder) {
	h, b, o := t.h, &t.b, t.ops
	kvd := h.KVDim()
	eps := float32(h.RMSEps)
	r.phase("backward")
	for l := 0; l < h.Layers; l++ {
		r.do("zero cache grads", func() error { return o.Fill(r.rec, b.dkc[l], 0, t.sched.Cap*kvd, 0) })
		r.do("zero cache grads", func() error { return o.Fill(r.rec, b.dvc[l], 0, t.sched.Cap*kvd, 0) })
	}
	for g := len(t.sched.Segments) - 1; g >= 0; g-- {
		s := t.sched.Segments[g]
		n, all := s.Tokens, s.Rows+s.Tokens
		r.copyRows(b.dxf, s.Start, b.dx, 0, n, h.Dim)
		for l := h.Layers - 1; l >= 0; l-- {
			a := t.acts(g, l)
			if l >= t.kept {
				r.phase("recompute")
				if g > 0 && b.snapK != nil {
					r.copyRows(b.snapK[l], g*s.Rows, b.kc[l], 0, s.Rows, kvd)
					r.copyRows(b.snapV[l], g*s.Rows, b.vc[l], 0, s.Rows, kvd)
				}
				t.layerForward(r, g, l, true)
			}
			vc := t.values(a, l)
			r.phase("backward")
			if l < t.kept {
				r.copyRows(b.ckpt[l], s.Start, b.xin, 0, n, h.Dim) // the attention norm's input
			}
			// FFN: x_out = xmid + down(swiglu(gate(xb2), up(xb2)))
			r.do("down backward", func() error { return o.MatMulBackwardX(r.rec, b.dx, t.weight(l, MatDown), b.dhidden, n, false) })
			t.weightGrad(r, l, MatDown, b.dx, a.hidden, n)
			r.do("swiglu backward", func() error {
				return o.SwiGLUBackward(r.rec, a.gate, a.up, b.dhidden, b.dgate, b.dup, n*h.FFN)
			})
			r.do("gate backward", func() error { return o.MatMulBackwardX(r.rec, b.dgate, t.weight(l, MatGate), b.dxb, n, false) })
			r.do("up backward", func() error { return o.MatMulBackwardX(r.rec, b.dup, t.weight(l, MatUp), b.dxb, n, true) })
			t.weightGrad(r, l, MatGate, b.dgate, a.xb2, n)
			t.weightGrad(r, l, MatUp, b.dup, a.xb2, n)
			r.do("ffn norm backward", func() error {
				return o.RMSNormBackward(r.rec, a.xmid, t.ffnNormW(l), b.dxb, b.dx, t.gradOrDummy(t.ffnNorm[l]), b.inv, n, h.Dim, eps, true)
			})
			// attention output: xmid = xin + o(att)
			t.projectBack(r, a, l, TargetO, a.att, b.dx, b.datt, n, false)
			if t.sched.Window > 0 {
				// one segment: the key and value gradients are all there is
				r.do("window attention backward", func() error {
					return o.WindowAttentionTrainBackward(r.rec, a.qrot, a.qsink, a.krot, vc, a.att, b.datt, a.stats,
						b.dqrot, b.dqs, b.dkv2, t.windowParams(n))
				})
				r.copyRows(b.dkv2, 0, b.dkrot, 0, n, kvd)
				r.copyRows(b.dkv2, n, b.dvc[l], 0, n, kvd)
				r.do("rope q backward", func() error { return o.Rope(r.rec, b.dqrot, b.posQ[g], b.dq, t.ropeParams(n, h.Heads, true)) })
				r.do("rope sink q backward", func() error {
					return o.Rope(r.rec, b.dqs, b.posSink, a.qsink, t.ropeParams(n, h.Heads, true))
				})
				r.do("sink q grads", func() error { return o.Axpy(r.rec, a.qsink, 0, b.dq, 0, n*h.Heads*h.HeadDim(), 1, 1) })
			} else {
				ap := t.attnParams(s)
				ap.AccumulatePrefix, ap.AccumulateOwn = true, true
				// rotated-key gradients accumulate into a zeroed buffer; value
				// gradients straight into the cache gradient
				r.do("zero key grads", func() error { return o.Fill(r.rec, b.dkrot, 0, all*kvd, 0) })
				r.do("attention backward", func() error {
					return o.AttentionTrainBackward(r.rec, a.qrot, a.krot, vc, a.att, b.datt, a.stats, b.dqrot, b.dkrot, b.dvc[l], ap)
				})
				r.do("rope q backward", func() error { return o.Rope(r.rec, b.dqrot, b.posQ[g], b.dq, t.ropeParams(n, h.Heads, true)) })
			}
			r.do("rope k backward", func() error {
				return o.Rope(r.rec, b.dkrot, b.posRow, b.dkun, t.ropeParams(all, h.KVHeads, true))
			})
			r.do("key grads", func() error { return o.Axpy(r.rec, b.dkun, 0, b.dkc[l], 0, all*kvd, 1, 1) })
			// the segment's own rows are its k and v projections
			r.do("own key grads", func() error { return o.Axpy(r.rec, b.dkc[l], s.Rows*kvd, b.dk, 0, n*kvd, 1, 0) })
			r.do("own value grads", func() error { return o.Axpy(r.rec, b.dvc[l], s.Rows*kvd, b.dv, 0, n*kvd, 1, 0) })
			t.projectBack(r, a, l, TargetQ, a.xb, b.dq, b.dxb, n, false)
			t.projectBack(r, a, l, TargetK, a.xb, b.dk, b.dxb, n, true)
			t.projectBack(r, a, l, TargetV, a.xb, b.dv, b.dxb, n, true)
			r.do("attention norm backward", func() error {
				return o.RMSNormBackward(r.rec, b.xin, t.attnNormW(l), b.dxb, b.dx, t.gradOrDummy(t.attnNorm[l]), b.inv, n, h.Dim, eps, true)
			})
			if g > 0 && t.cfg.Cache.Kind == kvcache.FreqKV {
				// the prefix rows are the compression's output after segment
				// g-1: carry their gradient back to that segment's full cache
				r.phase("adjoint")
				t.adjoint(r, b.dkc[l])
				t.adjoint(r, b.dvc[l])
			}
		}
		if t.embd != nil {
			r.phase("embedding backward")
			r.do("embedding backward", func() error {
				return o.EmbeddingBackward(r.rec, b.index[g], b.dx, t.embd.Grad, t.unique[g], n, h.Dim)
			})
		}
	}
}

// adjoint records, in place, the gradient of the full cache that the
// compression after a segment read, from the gradient of its output rows
// [0, S+m+R): sinks pass through, the span gets the compression's adjoint,
// the recent rows move back down. Every row of the result is written.
func (t *Trainer) adjoint(r *recorder, d *engine.Tensor) {
	b, o := &t.b, t.ops
	c := t.cfg.Cache.FreqKV()
	kvd := t.h.KVDim()
	S, L, m, R := c.Sink, c.Span(), c.Kept(), c.Recent
	r.copyRows(d, 0, b.adj, 0, S, kvd)
	if b.adjMat != nil {
		r.do("compression adjoint", func() error {
			return o.GEMM(r.rec, b.adjMat, d, b.adj, L, kvd, m, shaders.GEMMOptions{BOff: S * kvd, COff: S * kvd})
		})
	} else {
		r.do("adjoint", func() error { return o.Fill(r.rec, b.adj, S*kvd, L*kvd, 0) })
		r.do("compression adjoint", func() error {
			return o.CompressAdjoint(r.rec, d, S, b.adj, S, b.adjWork, b.adjWork2, b.dctWork, L, m, kvd)
		})
	}
	r.copyRows(d, S+m, b.adj, S+L, R, kvd)
	r.copyRows(b.adj, 0, d, 0, t.sched.Cap, kvd)
}

func sqrtf(x float64) float64 {
	z := x
	for i := 0; i < 60; i++ {
		z = 0.5 * (z + x/z)
	}
	return z
}
