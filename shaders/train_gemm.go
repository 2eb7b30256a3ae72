package shaders

import (
	"cmp"
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
)

const (
	gemmWG = 64
	gemmTM = 8 // rows of C per invocation
	// gemmMaxK is the inner dimension one dispatch loops over within
	// loopBudget (llvmpipe's loop cap): per step a loop of TM; 4·TM+TM+4 outside.
	gemmMaxK = (loopBudget - 5*gemmTM - 4) / (1 + gemmTM)
)

// GEMMOptions modify a GEMM.
type GEMMOptions struct {
	TransA, TransB bool    // A is stored [k, m] / B is stored [n, k]
	Alpha          float32 // 0 means 1
	Accumulate     bool    // C += Alpha·op(A)·op(B) instead of C = ...
	// Element offsets and row strides of the stored A, B and C (0 strides:
	// dense, i.e. k or m for A, n or k for B, n for C), so a product can
	// address a block of a larger matrix (a weight part's columns of dy).
	AOff, BOff, COff int
	LDA, LDB, LDC    int
}

// gemmUniform is train_gemm.wgsl's Params.
type gemmUniform struct {
	m, n, k          uint32
	alpha            float32
	acc              uint32 // 1: C += ...
	aoff, boff, coff uint32
	lda, ldb, ldc    uint32
}

// GEMM records C[m, n] (+)= Alpha · op(A)[m, k] · op(B)[k, n] for f32
// tensors (train_gemm.wgsl): op(A)[i, l] is A[AOff+i*LDA+l], or
// A[AOff+l*LDA+i] with TransA; op(B)[l, j] is B[BOff+l*LDB+j], or
// B[BOff+j*LDB+l] with TransB; C[i, j] is c[COff+i*LDC+j]. c must not
// share a buffer with a or b.
func (o *Ops) GEMM(rec *engine.Recorder, a, b, c *engine.Tensor, m, n, k int, opt GEMMOptions) error {
	if m < 1 || n < 1 || k < 1 {
		return fmt.Errorf("gemm: empty product m=%d n=%d k=%d", m, n, k)
	}
	if uint64(max(m, n))*uint64(k) > math.MaxUint32 || uint64(m)*uint64(n) > math.MaxUint32 {
		return fmt.Errorf("gemm: m=%d n=%d k=%d overflow 32-bit indexing", m, n, k)
	}
	if ceilDiv(m, gemmTM) > maxWorkDim {
		return fmt.Errorf("gemm: %d rows are too many for one dispatch (at most %d)", m, gemmTM*maxWorkDim)
	}
	ar, ac := m, k // stored shapes
	if opt.TransA {
		ar, ac = k, m
	}
	br, bc := k, n
	if opt.TransB {
		br, bc = n, k
	}
	lda, ldb, ldc := cmp.Or(opt.LDA, ac), cmp.Or(opt.LDB, bc), cmp.Or(opt.LDC, n)
	if lda < ac || ldb < bc || ldc < n || opt.AOff < 0 || opt.BOff < 0 || opt.COff < 0 {
		return fmt.Errorf("gemm: strides %d/%d/%d below the rows' %d/%d/%d, or a negative offset", lda, ldb, ldc, ac, bc, n)
	}
	ea, eb, ec := opt.AOff+(ar-1)*lda+ac, opt.BOff+(br-1)*ldb+bc, opt.COff+(m-1)*ldc+n
	if uint64(max(ea, eb, ec)) > math.MaxUint32 {
		return fmt.Errorf("gemm: m=%d n=%d k=%d with strides overflow 32-bit indexing", m, n, k)
	}
	if err := need("gemm a", a, engine.F32, ea); err != nil {
		return err
	}
	if err := need("gemm b", b, engine.F32, eb); err != nil {
		return err
	}
	if err := need("gemm c", c, engine.F32, ec); err != nil {
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
		"WG": u(gemmWG), "TM": u(gemmTM), "TA": fmt.Sprint(opt.TransA), "TB": fmt.Sprint(opt.TransB),
	})
	if err != nil {
		return err
	}
	groups := [3]uint32{uint32(ceilDiv(ceilDiv(n, 4), gemmWG)), uint32(ceilDiv(m, gemmTM)), 1}
	// A long inner dimension (a weight gradient sums over every token of a step)
	// takes several dispatches of gemmMaxK, the later ones adding, so no
	// invocation passes llvmpipe's loop cap; the offsets move along k.
	for l0 := 0; l0 < k; l0 += gemmMaxK {
		aoff, boff := opt.AOff+l0, opt.BOff+l0*ldb
		if opt.TransA {
			aoff = opt.AOff + l0*lda
		}
		if opt.TransB {
			boff = opt.BOff + l0
		}
		u := gemmUniform{m: uint32(m), n: uint32(n), k: uint32(min(gemmMaxK, k-l0)), alpha: alpha, acc: b2u(opt.Accumulate || l0 > 0),
			aoff: uint32(aoff), boff: uint32(boff), coff: uint32(opt.COff), lda: uint32(lda), ldb: uint32(ldb), ldc: uint32(ldc)}
		if err := rec.Dispatch(kn, words(u), groups, a.Binding(), b.Binding(), c.Binding()); err != nil {
			return err
		}
	}
	return nil
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
