package shaders_test

import (
	"encoding/binary"
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

// uploadRaw uploads an [n, k] weight of GGUF type gt from its raw bytes and returns it
// with its values dequantised on the CPU (package ggml), for the float64 reference.
func uploadRaw(t *testing.T, dev *engine.Device, dt engine.DType, gt ggml.Type, raw []byte, n, k int) (*engine.Weight, []float32) {
	t.Helper()
	deq, err := ggml.Dequantize(gt, raw, n*k)
	if err != nil {
		t.Fatal(err)
	}
	w, err := dev.UploadWeight("w", dt, n, k, raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Release)
	return w, deq
}

// productRef is x·Wᵀ in float64 for x [m, k] and W [n, k].
func productRef(x, w []float32, m, n, k int) []float64 {
	y := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for e := range k {
				s += float64(x[i*k+e]) * float64(w[j*k+e])
			}
			y[i*n+j] = s
		}
	}
	return y
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
		{engine.Q8_0, ggml.Q8_0, false}, {engine.Q4_0, ggml.Q4_0, false}} {
		var raw []byte
		var err error
		if !c.gt.CanQuantize() {
			raw = kquantBlocks(r, c.gt, n*k)
		} else if raw, err = ggml.Quantize(c.gt, randF32(r, n*k)); err != nil {
			t.Fatal(err)
		}
		w, deq := uploadRaw(t, dev, c.dt, c.gt, raw, n, k)
		for _, kern := range append([]shaders.MatMulKernel{shaders.MatMulAuto}, shaders.MatMulKernels...) {
			for _, m := range []int{1, 9} {
				xv := randF32(r, m*k)
				want := productRef(xv, deq, m, n, k)
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

// TestLoopCapMatMulXTiled: the xtiled kernel at its longest row (a 64 KiB uniform binding
// holds one row of 16320 f32): the rows and columns of its tile are written out or
// unrolled, so only the loop over K's groups or blocks counts, far within the cap.
func TestLoopCapMatMulXTiled(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	const n, m, k = 67, 9, 16320
	r := rand.New(rand.NewPCG(9, 10))
	for _, c := range []struct {
		dt engine.DType
		gt ggml.Type
	}{{engine.F32, ggml.F32}, {engine.F16, ggml.F16}, {engine.Q8_0, ggml.Q8_0}, {engine.Q4_0, ggml.Q4_0}} {
		raw, err := ggml.Quantize(c.gt, randF32(r, n*k))
		if err != nil {
			t.Fatal(err)
		}
		w, deq := uploadRaw(t, dev, c.dt, c.gt, raw, n, k)
		xv := randF32(r, m*k)
		want := productRef(xv, deq, m, n, k)
		x := f32Tensor(t, dev, "x", engine.F32, m, k, xv)
		y := nanTensor(t, dev, "y", m, n)
		rec := dev.NewRecorder()
		if err := ops.MatMul(rec, x, w, y, m, shaders.MatMulOptions{Kernel: shaders.MatMulXTiled}); err != nil {
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
			t.Errorf("%s: relative error %.3g", c.dt, e)
		}
	}
}

// ropeRef rotates the adjacent pairs of x (GGUF 'llama' order) to position pos, in float64.
func ropeRef(x []float64, pos int, base float64) []float64 {
	y := make([]float64, len(x))
	for i := 0; i < len(x); i += 2 {
		a := float64(pos) * math.Pow(base, -float64(i)/float64(len(x)))
		c, s := math.Cos(a), math.Sin(a)
		y[i] = x[i]*c - x[i+1]*s
		y[i+1] = x[i]*s + x[i+1]*c
	}
	return y
}

// TestLoopCapAttention: decode over 70000 cache rows at head dim 128 (f16 cache)
// and a 512-query prefill chunk over 16K rows, against float64 causal attention.
// The passes are bounded by their split-K chunks (docs/webgpu.md), so these hold
// without further splitting; the test keeps it so.
func TestLoopCapAttention(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	for _, c := range []struct {
		T, rows, heads, kvHeads, d int
		cache                      engine.DType
	}{{1, 69999, 2, 1, 128, engine.F16}, {512, 16384 - 512, 1, 1, 64, engine.F32}} {
		p := shaders.AttentionParams{T: c.T, Heads: c.heads, KVHeads: c.kvHeads, HeadDim: c.d, RopeDim: c.d, Rows: c.rows, Cap: c.rows + c.T,
			Scale: float32(1 / math.Sqrt(float64(c.d)))}
		r := rand.New(rand.NewPCG(uint64(c.T), 3))
		width, kvWidth := c.heads*c.d, c.kvHeads*c.d
		qv, kv, vv := randF32(r, c.T*width), randF32(r, p.Cap*kvWidth), randF32(r, p.Cap*kvWidth)
		upload := func(label string, v []float32) *engine.Tensor {
			if c.cache == engine.F32 {
				return f32Tensor(t, dev, label, engine.F32, p.Cap, kvWidth, v)
			}
			b := make([]byte, 2*len(v))
			for i, f := range v {
				h := ggml.F32ToF16(f)
				b[2*i], b[2*i+1] = byte(h), byte(h>>8)
				v[i] = ggml.F16ToF32(h) // the reference sees the stored values
			}
			x := f32Tensor(t, dev, label, engine.F16, p.Cap, kvWidth, nil)
			if err := x.Upload(b); err != nil {
				t.Fatal(err)
			}
			return x
		}
		k, v := upload("k", kv), upload("v", vv)
		q := f32Tensor(t, dev, "q", engine.F32, c.T, width, qv)
		rope := f32Tensor(t, dev, "rope", engine.F32, p.Cap, c.d, shaders.RopeTable(p.Cap, c.d, 10000, 1))
		out := nanTensor(t, dev, "out", c.T, width)
		scratch := nanTensor(t, dev, "scratch", 1, shaders.AttentionScratch(p))
		rec := dev.NewRecorder()
		if err := ops.Attention(rec, q, k, v, rope, out, scratch, p); err != nil {
			t.Fatal(err)
		}
		if err := rec.SubmitAndWait(); err != nil {
			t.Fatal(err)
		}
		got, err := out.ReadF32()
		if err != nil {
			t.Fatal(err)
		}
		// float64 reference: key j at position j, query t at rows + t, sees keys 0..rows+t
		keys := make([][]float64, p.Cap*c.kvHeads)
		row := make([]float64, c.d)
		for j := range p.Cap {
			for g := range c.kvHeads {
				for e := range row {
					row[e] = float64(kv[j*kvWidth+g*c.d+e])
				}
				keys[j*c.kvHeads+g] = ropeRef(row, j, 10000)
			}
		}
		want := make([]float64, c.T*width)
		s := make([]float64, p.Cap)
		// every query runs; the reference checks every 16th and the last
		var checked []float32
		var wanted []float64
		for tq := range c.T {
			if tq%16 != 0 && tq != c.T-1 {
				continue
			}
			n := c.rows + tq + 1
			for h := range c.heads {
				g := h / (c.heads / c.kvHeads)
				for e := range row {
					row[e] = float64(qv[tq*width+h*c.d+e])
				}
				qr := ropeRef(row, n-1, 10000)
				m := math.Inf(-1)
				for j := range n {
					var dot float64
					for e, x := range keys[j*c.kvHeads+g] {
						dot += x * qr[e]
					}
					s[j] = dot * float64(p.Scale)
					m = max(m, s[j])
				}
				var l float64
				o := want[tq*width+h*c.d : tq*width+(h+1)*c.d]
				for j := range n {
					w := math.Exp(s[j] - m)
					l += w
					for e := range o {
						o[e] += w * float64(vv[j*kvWidth+g*c.d+e])
					}
				}
				for e := range o {
					o[e] /= l
				}
			}
			checked = append(checked, got[tq*width:(tq+1)*width]...)
			wanted = append(wanted, want[tq*width:(tq+1)*width]...)
		}
		name := fmt.Sprintf("T=%d over %d rows, head dim %d, %s cache", c.T, c.rows, c.d, c.cache)
		for _, g := range got {
			if math.IsNaN(float64(g)) {
				t.Fatalf("%s: an output was not written", name)
			}
		}
		if e := normErr(checked, wanted); !(e < 1e-3) {
			t.Errorf("%s: relative error %.3g", name, e)
		} else {
			t.Logf("%s: relative error %.2g", name, e)
		}
	}
}

// TestLoopCapTrainProducts: the training GEMM over a long inner dimension (a
// weight gradient sums over every token of a step) and the input gradient
// through a weight of many rows (an output layer's vocabulary).
func TestLoopCapTrainProducts(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	r := rand.New(rand.NewPCG(5, 6))
	const m, n, long = 3, 5, 70000
	// C[m, n] = A[m, long] · B[long, n]
	av, bv := randF32(r, m*long), randF32(r, long*n)
	want := make([]float64, m*n)
	for i := range m {
		for j := range n {
			for l := range long {
				want[i*n+j] += float64(av[i*long+l]) * float64(bv[l*n+j])
			}
		}
	}
	a, b := f32Tensor(t, dev, "a", engine.F32, m, long, av), f32Tensor(t, dev, "b", engine.F32, long, n, bv)
	// the transposed layouts, for the offsets each chunk moves along k
	at, bt := make([]float32, len(av)), make([]float32, len(bv))
	for l := range long {
		for i := range m {
			at[l*m+i] = av[i*long+l]
		}
		for j := range n {
			bt[j*long+l] = bv[l*n+j]
		}
	}
	ta, tb := f32Tensor(t, dev, "at", engine.F32, long, m, at), f32Tensor(t, dev, "bt", engine.F32, n, long, bt)
	c, ct := nanTensor(t, dev, "c", m, n), nanTensor(t, dev, "ct", m, n)
	rec := dev.NewRecorder()
	if err := ops.GEMM(rec, a, b, c, m, n, long, shaders.GEMMOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ops.GEMM(rec, ta, tb, ct, m, n, long, shaders.GEMMOptions{TransA: true, TransB: true}); err != nil {
		t.Fatal(err)
	}
	// dx[m, n] = dy[m, long] · W[long, n]: W's rows are the long side
	w, err := dev.UploadWeight("w", engine.F32, long, n, f32Bytes(bv), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Release)
	dx := nanTensor(t, dev, "dx", m, n)
	if err := ops.MatMulBackwardX(rec, a, w, dx, m, false); err != nil {
		t.Fatal(err)
	}
	if err := rec.SubmitAndWait(); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		name string
		x    *engine.Tensor
	}{{"gemm", c}, {"gemm transposed", ct}, {"matmul backward x", dx}} {
		got, err := o.x.ReadF32()
		if err != nil {
			t.Fatal(err)
		}
		if e := normErr(got, want); !(e < 1e-4) {
			t.Errorf("%s over %d: relative error %.3g", o.name, long, e)
		}
	}
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}
