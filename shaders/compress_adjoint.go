package shaders

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
)

// CompressAdjointScratch is the f32 elements of DCT scratch CompressAdjoint
// needs for a span of L rows kept as m, over C channels.
func CompressAdjointScratch(L, m, C int) int {
	return max(DCTScratch(L, C, 0), DCTScratch(m, C, 0))
}

// CompressAdjoint records the gradient through one FreqKV compression of a
// span. The forward maps the span's L rows x to m rows
// y = sqrt(m/L)·DCT-III_m(DCT-II_L(x)[:m]) along the sequence axis (every
// channel alike); its adjoint, recorded here, is
//
//	dx rows [dxRow0, dxRow0+L) += sqrt(m/L)·DCT-III_L(zero-pad_L(DCT-II_m(dy rows [dyRow0, dyRow0+m))))
//
// reusing the DCT2/DCT3 kernels of dct.wgsl. dy and dx are f32 with C
// columns (different buffers); workA and workB are f32 [>= L, C] tensors in
// two more buffers; scratch holds CompressAdjointScratch(L, m, C) f32.
func (o *Ops) CompressAdjoint(rec *engine.Recorder, dy *engine.Tensor, dyRow0 int, dx *engine.Tensor, dxRow0 int, workA, workB, scratch *engine.Tensor, L, m, C int) error {
	const what = "compress adjoint"
	if m < 1 || L < m || C < 1 || dyRow0 < 0 || dxRow0 < 0 {
		return fmt.Errorf("%s: span %d kept as %d over %d channels, rows from %d and %d: want 1 <= m <= L, C >= 1, rows >= 0", what, L, m, C, dyRow0, dxRow0)
	}
	for _, c := range []struct {
		t    *engine.Tensor
		name string
		rows int
	}{{dy, "dy", dyRow0 + m}, {dx, "dx", dxRow0 + L}, {workA, "workA", L}, {workB, "workB", L}} {
		if c.t == nil || c.t.DType != engine.F32 || c.t.Cols != C || c.t.Rows < c.rows {
			return fmt.Errorf("%s: %s must be f32 [>= %d, %d]", what, c.name, c.rows, C)
		}
	}
	bufs := map[*engine.Buffer]bool{}
	for _, t := range []*engine.Tensor{dy, dx, workA, workB, scratch} {
		if t != nil {
			bufs[t.Buf] = true
		}
	}
	if len(bufs) != 5 {
		return fmt.Errorf("%s: dy, dx, workA, workB and scratch need five different buffers", what)
	}
	if err := o.Axpy(rec, dy, dyRow0*C, workA, 0, m*C, 1, 0); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := o.DCT2(rec, workA, workB, scratch, m, C); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := o.Axpy(rec, workB, 0, workA, 0, m*C, 1, 0); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if L > m {
		if err := o.Fill(rec, workA, m*C, (L-m)*C, 0); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := o.DCT3(rec, workA, workB, scratch, L, C); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := o.Axpy(rec, workB, 0, dx, dxRow0*C, L*C, float32(math.Sqrt(float64(m)/float64(L))), 1); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
