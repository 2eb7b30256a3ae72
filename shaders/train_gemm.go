package shaders

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
)

const gemmWG = 64

// GEMMOptions modify a GEMM.
type GEMMOptions struct {
	TransA, TransB bool    // A is stored [k, m] / B is stored [n, k]
	Alpha          float32 // 0 means 1
	Accumulate     bool    // C += Alpha·op(A)·op(B) instead of C = ...
}

// gemmUniform is train_gemm.wgsl's Params.
type gemmUniform struct {
	m, n, k uint32
	alpha   float32
	acc     uint32 // 1: C += ...
}

// GEMM records C[m, n] (+)= Alpha · op(A)[m, k] · op(B)[k, n] for f32
// tensors (train_gemm.wgsl): op(A)[i, l] is A[i*k+l], or A[l*m+i] with
// TransA; op(B)[l, j] is B[l*n+j], or B[j*k+l] with TransB. c must not
// share a buffer with a or b.
func (o *Ops) GEMM(rec *engine.Recorder, a, b, c *engine.Tensor, m, n, k int, opt GEMMOptions) error {
	if m < 1 || n < 1 || k < 1 {
		return fmt.Errorf("gemm: empty product m=%d n=%d k=%d", m, n, k)
	}
	if uint64(max(m, n))*uint64(k) > math.MaxUint32 || uint64(m)*uint64(n) > math.MaxUint32 {
		return fmt.Errorf("gemm: m=%d n=%d k=%d overflow 32-bit indexing", m, n, k)
	}
	if ceilDiv(m, 4) > maxWorkDim {
		return fmt.Errorf("gemm: %d rows are too many for one dispatch (at most %d)", m, 4*maxWorkDim)
	}
	if err := need("gemm a", a, engine.F32, m*k); err != nil {
		return err
	}
	if err := need("gemm b", b, engine.F32, k*n); err != nil {
		return err
	}
	if err := need("gemm c", c, engine.F32, m*n); err != nil {
		return err
	}
	if err := distinct("gemm", c, a, b); err != nil {
		return err
	}
	alpha := opt.Alpha
	if alpha == 0 {
		alpha = 1
	}
	kn, err := o.kernel("train_gemm.wgsl", "gemm", engine.Constants{
		"WG": u(gemmWG), "TA": fmt.Sprint(opt.TransA), "TB": fmt.Sprint(opt.TransB),
	})
	if err != nil {
		return err
	}
	groups := [3]uint32{uint32(ceilDiv(ceilDiv(n, 4), gemmWG)), uint32(ceilDiv(m, 4)), 1}
	return rec.Dispatch(kn, words(gemmUniform{m: uint32(m), n: uint32(n), k: uint32(k), alpha: alpha, acc: b2u(opt.Accumulate)}), groups,
		a.Binding(), b.Binding(), c.Binding())
}

// distinct reports an output that shares a buffer with an input: WebGPU
// forbids binding one buffer read-only and writable in one dispatch.
func distinct(what string, out *engine.Tensor, ins ...*engine.Tensor) error {
	for _, in := range ins {
		if in != nil && out != nil && in.Buf == out.Buf {
			return fmt.Errorf("%s: output %q shares a buffer with an input; WebGPU forbids binding one buffer read-only and writable in a dispatch", what, out.Buf.Label)
		}
	}
	return nil
}
