package shaders

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
)

const (
	matmulBwdWG = 64
	matmulBwdTM = 8 // rows of dy per invocation: each dequantised weight element serves TM rows
)

// matmulBwdUniform is matmul_bwd.wgsl's Params, for one part of the weight.
type matmulBwdUniform struct {
	m, n, d   uint32 // rows of dy; rows of this part; columns of W and dx
	ldy, col0 uint32 // row stride of dy; first weight row of this part
	acc       uint32 // 1: dx += ...
	r0        uint32 // first part row of this dispatch (n is one past its last)
}

// matmulBwdRows is the part rows one dx dispatch loops over within loopBudget:
// per row a step and TM rows of dy; 4 + 2·TM + 4·TM outside.
const matmulBwdRows = (loopBudget - 4 - 6*matmulBwdTM) / (1 + matmulBwdTM)

// MatMulBackwardX records dx[m, K] (+)= dy[m, N] · W[N, K], the input
// gradient of y = x·Wᵀ through a frozen weight of any type MatMul takes
// (f32, f16, q8_0, q4_0; multi-part), dequantised as the forward does
// (matmul_bwd.wgsl). accumulate=false overwrites dx. dx must not share a
// buffer with dy.
func (o *Ops) MatMulBackwardX(rec *engine.Recorder, dy *engine.Tensor, w *engine.Weight, dx *engine.Tensor, m int, accumulate bool) error {
	if w == nil || len(w.Parts) == 0 {
		return fmt.Errorf("matmul backward: weight is nil or empty")
	}
	what := fmt.Sprintf("matmul backward %q", w.Label)
	code, ok := weightCode(w.DType)
	if !ok || code > 3 { // matmul_bwd.wgsl decodes f32, f16, q8_0 and q4_0 only
		return fmt.Errorf("%s: weight type %s is not supported (f32, f16, q8_0, q4_0)", what, w.DType)
	}
	n, k := w.Rows, w.Cols
	if m < 1 || n < 1 || k < 1 {
		return fmt.Errorf("%s: empty product: m=%d, weight [%d,%d]", what, m, n, k)
	}
	if k%w.DType.BlockSize() != 0 {
		return fmt.Errorf("%s: %s weights need K a multiple of %d, got %d", what, w.DType, w.DType.BlockSize(), k)
	}
	if err := checkParts(what, w); err != nil {
		return err
	}
	if err := need(what+" dy", dy, engine.F32, m*n); err != nil {
		return err
	}
	if err := need(what+" dx", dx, engine.F32, m*k); err != nil {
		return err
	}
	if uint64(m)*uint64(max(k, n)) > math.MaxUint32/4 {
		return fmt.Errorf("%s: m=%d rows of [%d,%d] overflow 32-bit indexing", what, m, n, k)
	}
	if ceilDiv(m, matmulBwdTM) > maxWorkDim {
		return fmt.Errorf("%s: %d rows are too many for one dispatch", what, m)
	}
	if err := distinct(what, dx, dy); err != nil {
		return err
	}
	kn, err := o.kernel("matmul_bwd.wgsl", "dx_tiled", engine.Constants{"WTYPE": u(code), "WG": u(matmulBwdWG), "TM": u(matmulBwdTM)})
	if err != nil {
		return err
	}
	groups := [3]uint32{uint32(ceilDiv(ceilDiv(k, 4), matmulBwdWG)), uint32(ceilDiv(m, matmulBwdTM)), 1}
	for i, part := range w.Parts {
		for r0 := 0; r0 < part.Rows; r0 += matmulBwdRows {
			acc := accumulate || i > 0 || r0 > 0 // later rows add to the first dispatch's sum
			params := words(matmulBwdUniform{m: uint32(m), n: uint32(min(part.Rows, r0+matmulBwdRows)), d: uint32(k), ldy: uint32(n),
				col0: uint32(w.Row0(i)), acc: b2u(acc), r0: uint32(r0)})
			if err := rec.Dispatch(kn, params, groups, dy.Binding(), part.Binding(), dx.Binding()); err != nil {
				return fmt.Errorf("%s part %d: %w", what, i, err)
			}
		}
	}
	return nil
}

// MatMulBackwardW records dw[N, K] += dy[m, N]ᵀ · x[m, K], the gradient of
// a trainable f32 matrix W of y = x·Wᵀ (always accumulates: zero dw with
// Fill before the first micro-batch). dw's shape gives N and K.
func (o *Ops) MatMulBackwardW(rec *engine.Recorder, dy, x, dw *engine.Tensor, m int) error {
	return o.MatMulBackwardWPart(rec, dy, x, dw, m, 0, 0)
}

// MatMulBackwardWPart is MatMulBackwardW for one part of a weight split by
// rows: dw holds rows [row0, row0+N) of a weight of ldy rows, and dy
// [m, ldy] is read at those columns.
func (o *Ops) MatMulBackwardWPart(rec *engine.Recorder, dy, x, dw *engine.Tensor, m, row0, ldy int) error {
	if dw == nil {
		return fmt.Errorf("matmul backward w: dw is nil")
	}
	if err := o.GEMM(rec, dy, x, dw, dw.Rows, dw.Cols, m, GEMMOptions{TransA: true, Accumulate: true, AOff: row0, LDA: ldy}); err != nil {
		return fmt.Errorf("matmul backward w: %w", err)
	}
	return nil
}

// LoRAForward records the adapter's share of y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ
// after the base MatMul has written y: u = x·Aᵀ, then y += scale·u·Bᵀ.
// A is f32 [rank, K], B f32 [N, rank], x [m, K], y [m, N], u [m, rank]
// (kept for the backward). It is an add-on pass, not fused with the base
// product, so the base keeps the inference kernels of every weight type.
func (o *Ops) LoRAForward(rec *engine.Recorder, x, a, b, u, y *engine.Tensor, m, rank int, scale float32) error {
	if a == nil || b == nil || a.Rows != rank || b.Cols != rank {
		return fmt.Errorf("lora forward: A must be [rank=%d, K] and B [N, %d]", rank, rank)
	}
	k, n := a.Cols, b.Rows
	if err := o.GEMM(rec, x, a, u, m, rank, k, GEMMOptions{TransB: true}); err != nil {
		return fmt.Errorf("lora forward x·Aᵀ: %w", err)
	}
	if err := o.GEMM(rec, u, b, y, m, n, rank, GEMMOptions{TransB: true, Alpha: scale, Accumulate: true}); err != nil {
		return fmt.Errorf("lora forward u·Bᵀ: %w", err)
	}
	return nil
}

// LoRABackward records the adapter's gradients given dy [m, N] and the
// forward's u = x·Aᵀ [m, rank]: db += scale·dyᵀ·u, du = scale·dy·B (du is
// scratch f32 [m, rank]), da += duᵀ·x, dx += du·A (dx already holds the
// base path's MatMulBackwardX; pass dx nil to skip it).
func (o *Ops) LoRABackward(rec *engine.Recorder, x, u, dy, a, b, da, db, du, dx *engine.Tensor, m, rank int, scale float32) error {
	if a == nil || b == nil || a.Rows != rank || b.Cols != rank {
		return fmt.Errorf("lora backward: A must be [rank=%d, K] and B [N, %d]", rank, rank)
	}
	k, n := a.Cols, b.Rows
	if err := o.GEMM(rec, dy, u, db, n, rank, m, GEMMOptions{TransA: true, Alpha: scale, Accumulate: true}); err != nil {
		return fmt.Errorf("lora backward dB: %w", err)
	}
	if err := o.GEMM(rec, dy, b, du, m, rank, n, GEMMOptions{Alpha: scale}); err != nil {
		return fmt.Errorf("lora backward du: %w", err)
	}
	if err := o.GEMM(rec, du, x, da, rank, k, m, GEMMOptions{TransA: true, Accumulate: true}); err != nil {
		return fmt.Errorf("lora backward dA: %w", err)
	}
	if dx == nil {
		return nil
	}
	if err := o.GEMM(rec, du, a, dx, m, k, rank, GEMMOptions{Accumulate: true}); err != nil {
		return fmt.Errorf("lora backward dx: %w", err)
	}
	return nil
}
