package shaders_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/shaders"
)

// The tests in this file run kernels whose loops grow with their input just
// past llvmpipe's loop cap: lavapipe stops all loops of an invocation, without
// an error, once their iterations together reach 65535 (docs/webgpu.md).
// Each output is compared with a float64 reference computed here; outputs
// start as NaN so an unwritten element fails.

// loopCapK is a row length whose products, read one element per iteration,
// would exceed the cap (and does in four-element or 32-element steps with
// the tiles' inner loops counted).
const loopCapK = 69632

func nanTensor(t *testing.T, dev *engine.Device, label string, rows, cols int) *engine.Tensor {
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return f32Tensor(t, dev, label, engine.F32, rows, cols, v)
}

// normErr is max|got - want| / max|want|.
func normErr(got []float32, want []float64) float64 {
	var e, m float64
	for i, w := range want {
		d := math.Abs(float64(got[i]) - w)
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		e = max(e, d)
		m = max(m, math.Abs(w))
	}
	return e / m
}

// TestLoopCapMatMul: every matmul kernel at a K past the cap, for each weight
// family (32-bit loads, 16-byte loads, 32-element blocks, K-quant super-blocks).
func TestLoopCapMatMul(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	const n, k = 8, loopCapK
	r := rand.New(rand.NewPCG(7, 8))
	for _, c := range []struct {
		dt     engine.DType
		gt     ggml.Type
		narrow bool
	}{{engine.F32, ggml.F32, true}, {engine.F16, ggml.F16, true}, {engine.F32, ggml.F32, false}, {engine.F16, ggml.F16, false},
		{engine.Q8_0, ggml.Q8_0, false}, {engine.Q4_0, ggml.Q4_0, false}, } {
		var raw []byte
		var err error
		if !c.gt.CanQuantize() {
			raw = kquantBlocks(r, c.gt, n*k)
		} else if raw, err = ggml.Quantize(c.gt, randF32(r, n*k)); err != nil {
			t.Fatal(err)
		}
		deq, err := ggml.Dequantize(c.gt, raw, n*k)
		if err != nil {
			t.Fatal(err)
		}
		w, err := dev.UploadWeight("w", c.dt, n, k, raw, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Release)
		for _, kern := range append([]shaders.MatMulKernel{shaders.MatMulAuto}, shaders.MatMulKernels...) {
			for _, m := range []int{1, 9} {
				xv := randF32(r, m*k)
				want := make([]float64, m*n)
				for i := range m {
					for j := range n {
						var s float64
						for e := range k {
							s += float64(xv[i*k+e]) * float64(deq[j*k+e])
						}
						want[i*n+j] = s
					}
				}
				x := f32Tensor(t, dev, "x", engine.F32, m, k, xv)
				y := nanTensor(t, dev, "y", m, n)
				name := fmt.Sprintf("%s narrow=%v %s m=%d", c.dt, c.narrow, kern, m)
				rec := dev.NewRecorder()
				err := ops.MatMul(rec, x, w, y, m, shaders.MatMulOptions{Kernel: kern, NarrowLoads: c.narrow})
				if c.dt == engine.F16 && !c.narrow && kern == shaders.MatMulTiled {
					// the f16 tiles loop 9 times per 8 elements: refused, and the
					// automatic choice above takes the rows kernel
					if err == nil || !strings.Contains(err.Error(), "too long") {
						t.Errorf("%s: got %v, want a refusal", name, err)
					}
					rec.Discard()
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := rec.SubmitAndWait(); err != nil {
					t.Fatal(err)
				}
				got, err := y.ReadF32()
				if err != nil {
					t.Fatal(err)
				}
				if e := normErr(got, want); !(e < 1e-4) {
					t.Errorf("%s: relative error %.3g", name, e)
				} else {
					t.Logf("%s: ok %.2g", name, e)
				}
			}
		}
	}
}
