package shaders

import (
	"fmt"
	"math"
	"strings"

	"github.com/freqkv/freqkv/engine"
)

// MatMulOptions modify a matrix product.
type MatMulOptions struct {
	// Accumulate adds the product to y (y += x·Wᵀ) instead of overwriting it,
	// which fuses the residual add.
	Accumulate bool
	// Bias, when set, is an f32 [1, N] row added once to every output row
	// (qwen2's q/k/v biases).
	Bias *engine.Tensor
	// Kernel forces a kernel (tests, benchmarks); zero picks by adapter and shape.
	Kernel MatMulKernel
	// StorageX keeps x in a storage binding in the rows kernel, where it would
	// otherwise go through a uniform binding (tests, benchmarks).
	StorageX bool
	// XTileRows caps the rows of x per uniform binding in the xtiled kernel
	// (tests: several bindings per window at small K); zero takes what fits.
	XTileRows int
	// NarrowLoads forces the 32-bit-load kernels of matmul.wgsl for f32 and
	// f16 weights even where K allows the 16-byte loads of matmul_vec4.wgsl
	// (tests, benchmarks).
	NarrowLoads bool
}

// MatMulKernel names one of the matrix-product kernels. Every kernel takes
// every shape and weight type, so tests can run each vector on each of them.
type MatMulKernel uint8

const (
	// MatMulAuto picks MatMulRows for m <= 3 and, for f32 and f16 weights,
	// MatMulXTiled for more rows on CPU adapters, MatMulGroups for m == 1 on
	// GPUs, and MatMulTiled otherwise.
	MatMulAuto MatMulKernel = iota
	// MatMulRows computes a few output columns per invocation (one row of x
	// per workgroup layer) with no barriers: on llvmpipe the invocations of a
	// workgroup are SIMD lanes and barriers are coroutine switches, so this
	// is the fast decode path there.
	MatMulRows
	// MatMulGroups gives each output column a workgroup that strides over K
	// and reduces in shared memory: the decode path for GPUs.
	MatMulGroups
	// MatMulTiled computes TM x TN register tiles of y, reading each x and W
	// element once per tile: the prefill path.
	MatMulTiled
	// MatMulXTiled computes TM x TN register tiles of y with x in uniform
	// bindings, one dispatch per window of TM rows: on llvmpipe a uniform load
	// is a branch-free gather where a storage load is a loop over the lanes,
	// so only W's loads remain loops (the prefill path on CPU adapters). It
	// needs f32/f16/q8_0/q4_0 weights, K*4 a multiple of the uniform offset
	// alignment and m >= TM; other products fall back to MatMulTiled.
	MatMulXTiled
)

// MatMulKernels lists the forcible kernels, for tests and benchmarks.
var MatMulKernels = []MatMulKernel{MatMulRows, MatMulGroups, MatMulTiled, MatMulXTiled}

func (k MatMulKernel) String() string {
	switch k {
	case MatMulAuto:
		return "auto"
	case MatMulRows:
		return "rows"
	case MatMulGroups:
		return "groups"
	case MatMulTiled:
		return "tiled"
	case MatMulXTiled:
		return "xtiled"
	}
	return fmt.Sprintf("MatMulKernel(%d)", uint8(k))
}

// Workgroup and tile shapes, measured on lavapipe (see matmul_bench_test.go).
const (
	matvecWG   = 64 // invocations per workgroup in the rows kernel
	tiledWG    = 64
	tiledTM    = 8 // x rows per register tile, shared by a workgroup
	tiledTN    = 4 // weight rows per register tile, per invocation
	maxWorkDim = 65535
	// Up to rowsMaxM rows of x, the rows kernel (which reads W once per row of
	// x) beats the 8-row tiles on llvmpipe; from 4 rows on, tiles win.
	rowsMaxM = 3
	// The xtiled kernel: rows of its register tile (one per uniform binding)
	// and columns per invocation. 4 rows by 8 columns measured best of 2-32
	// rows by 1-16 columns in CPU time (BenchmarkPrefillXTiled, f16: 10.5
	// GFLOP per CPU-second against 7-9 for 16x2, 8x4, 8x8, 16x4 and 4x16): x's
	// uniform loads are gathers, one per element and row, so more columns per
	// invocation cut them, until W's tile spills.
	xtileRows = 4
	// The xtiled kernel records a dispatch per window of x rows, so it pays
	// only where each does enough work to hide a dispatch's 40-55 us: from
	// 2^18 weights (a 1024 x 256 matrix: 1M multiply-adds per dispatch). Below
	// it, stories260K's 64-wide products ran 1.7x slower than with the tiles
	// (the training forward over 2048 tokens: 1.8 s against 1.05 s).
	xtileMinWeights = 1 << 18
	// xtileMaxBlocks bounds the row blocks of a window (rows per binding): a
	// window of 4*B rows is one dispatch, so B cuts the dispatches per product
	// B-fold where a binding holds B rows.
	xtileMaxBlocks = 16
	xtileTN        = 8
	xtileWG        = 32
)

// xtileTypes are the weight types with an xtiled kernel.
var xtileTypes = map[engine.DType]bool{engine.F32: true, engine.F16: true, engine.Q8_0: true, engine.Q4_0: true}

// xtileBlocks is the row blocks B of the xtiled kernel's window for m rows of
// K columns: a power of two up to xtileMaxBlocks rows per uniform binding
// (capped by capRows when positive), at most m/4; ok is false where K's rows
// cannot start on the uniform offset alignment, or no row fits a binding, or m
// is under a tile.
func (o *Ops) xtileBlocks(k, m, capRows int) (b int, ok bool) {
	rowBytes := uint64(4 * k)
	if rowBytes%uint64(o.Dev.Limits.MinUniformBufferOffsetAlignment) != 0 {
		return 0, false
	}
	most := min(int(o.Dev.MaxUniformBinding()/rowBytes), xtileMaxBlocks, m/xtileRows)
	if capRows > 0 {
		most = min(most, capRows)
	}
	if most < 1 {
		return 0, false
	}
	// Powers of two keep the pipelines few (B is a kernel constant).
	for b = 1; 2*b <= most; b *= 2 {
	}
	return b, true
}

// groupsWG sizes the groups kernel's workgroup to the work units of a row
// (16-byte groups, or 4-element/quarter-block units), 32 to 256 invocations.
func groupsWG(units int) int {
	wg := 32
	for wg < 256 && wg < units {
		wg *= 2
	}
	return wg
}

// matmulShader is the kernel file for a weight type and row length, with the
// output columns per invocation of its rows kernel (each x load serves that
// many rows of W, which on llvmpipe is worth 1.3-1.8x over one; 8 gains
// another 5-15% but leaves too few workgroups for a 1024-row matrix).
func matmulShader(t engine.DType, k int, narrow bool) (file string, rows int) {
	switch {
	case t == engine.Q8_0 || t == engine.Q4_0:
		return "matmul_q.wgsl", 4
	case t == engine.Q4_K || t == engine.Q5_K || t == engine.Q6_K ||
		t == engine.Q4_1 || t == engine.Q5_0 || t == engine.Q5_1 || t == engine.IQ4_NL:
		return "matmul_k.wgsl", 4
	case !narrow && (t == engine.F32 && k%4 == 0 || t == engine.F16 && k%8 == 0):
		return "matmul_vec4.wgsl", 4
	}
	return "matmul.wgsl", 1
}

// matmulUniform is the Params of matmul_common.wgsl, shared by every matmul kernel file,
// for one part of the weight.
type matmulUniform struct {
	m, n, k uint32 // rows of x; rows of this weight part; columns of x and W
	ldy     uint32 // row stride of y (the whole weight's rows)
	col0    uint32 // first column of y this part writes
	acc     uint32 // 1: y += x·Wᵀ
	bias    uint32 // 1: add bias[col0 + j]
	row0    uint32 // y row of x's row 0 (xtile windows)
	first   uint32 // first x row of a window the xtile kernels store
}

// MatMul records y = x·Wᵀ for m rows: x is f32 [m, K] (row stride K, the
// first m*K elements of x), W is [N, K] of f32, f16, q8_0, q4_0, q4_1, q5_0,
// q5_1, iq4_nl, q4_k, q5_k or q6_k, and y is
// f32 [m, N] (row stride N). Quantised weights need K a multiple of their
// block: 32, or 256 for the K-quants (q4_k, q5_k, q6_k).
// It records one dispatch per weight part; part i writes y's columns
// [w.Row0(i), w.Row0(i)+rows). y must not share a buffer with x or the bias.
func (o *Ops) MatMul(rec *engine.Recorder, x *engine.Tensor, w *engine.Weight, y *engine.Tensor, m int, opt MatMulOptions) error {
	if w == nil || len(w.Parts) == 0 {
		return fmt.Errorf("matmul: weight is nil or empty")
	}
	what := fmt.Sprintf("matmul %q", w.Label)
	code, ok := weightCode(w.DType)
	if !ok {
		return fmt.Errorf("%s: weight type %s is not supported (f32, f16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q4_k, q5_k, q6_k)", what, w.DType)
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
	if err := need(what+" x", x, engine.F32, m*k); err != nil {
		return err
	}
	if err := need(what+" y", y, engine.F32, m*n); err != nil {
		return err
	}
	if uint64(m)*uint64(max(k, n)) > math.MaxUint32/4 {
		return fmt.Errorf("%s: m=%d rows of [%d,%d] overflow 32-bit indexing", what, m, n, k)
	}
	if x.Buf == y.Buf {
		return fmt.Errorf("%s: x and y share buffer %q; WebGPU forbids binding one buffer read-only and writable in a dispatch", what, y.Buf.Label)
	}
	biasBinding, hasBias := x.Binding(), uint32(0) // any read-only binding stands in for a missing bias
	if opt.Bias != nil {
		if err := need(what+" bias", opt.Bias, engine.F32, n); err != nil {
			return err
		}
		if opt.Bias.Buf == y.Buf {
			return fmt.Errorf("%s: bias and y share buffer %q; WebGPU forbids binding one buffer read-only and writable in a dispatch", what, y.Buf.Label)
		}
		biasBinding, hasBias = opt.Bias.Binding(), 1
	}
	kern := opt.Kernel
	if kern == MatMulAuto {
		switch {
		case o.Dev.Info.IsCPU() && m <= rowsMaxM:
			kern = MatMulRows
		case o.Dev.Info.IsCPU() && xtileTypes[w.DType] && n*k >= xtileMinWeights:
			kern = MatMulXTiled
		case m > 1:
			kern = MatMulTiled
		default:
			kern = MatMulGroups
		}
	}
	if kern == MatMulXTiled {
		xfile := "matmul_vec4_xtile.wgsl"
		if w.DType == engine.Q8_0 || w.DType == engine.Q4_0 {
			xfile = "matmul_q_xtile.wgsl"
		}
		b, ok := o.xtileBlocks(k, m, opt.XTileRows)
		if ok && xtileTypes[w.DType] && x.Offset%uint64(o.Dev.Limits.MinUniformBufferOffsetAlignment) == 0 {
			return o.matmulXTile(rec, what, xfile, code, x, w, y, m, b, hasBias, biasBinding, opt)
		}
		kern = MatMulTiled
	}
	if kern == MatMulTiled && ceilDiv(m, tiledTM) > maxWorkDim || kern != MatMulTiled && m > maxWorkDim {
		return fmt.Errorf("%s: %d rows of x are too many for the %s kernel", what, m, kern)
	}
	file, perInv := matmulShader(w.DType, k, opt.NarrowLoads)
	if k > matmulMaxK(kern, file, w.DType) {
		// llvmpipe's loop cap: the tiles of a long row fall back to the rows
		// kernel, which loops fewer times per element, when the kernel was not
		// forced (or was the xtiled one, which falls back for rows over a binding).
		if opt.Kernel != MatMulAuto && opt.Kernel != MatMulXTiled || kern != MatMulTiled || k > matmulMaxK(MatMulRows, file, w.DType) || m > maxWorkDim {
			return fmt.Errorf("%s: rows of %d elements are too long for the %s kernel, whose loops run at most %d iterations per invocation (%d elements)",
				what, k, kern, loopBudget, matmulMaxK(kern, file, w.DType))
		}
		kern = MatMulRows
	}
	xBinding := x.Binding()
	// x through a uniform binding where it fits: measured faster for every type
	// with a _ux file (medium decode step, quiet machine: q4_0 1.2x, f16 and f32
	// about 1.05-1.1x; an earlier f16 measurement under load and with a
	// per-dispatch CPU cost in every step had it slower).
	uniformX := kern == MatMulRows && !opt.StorageX && !o.StorageX &&
		(file == "matmul_q.wgsl" || file == "matmul_vec4.wgsl") &&
		uint64(4*m*k) <= o.Dev.MaxUniformBinding() && x.Offset%uint64(o.Dev.Limits.MinUniformBufferOffsetAlignment) == 0
	var entry string
	var wg int
	c := engine.Constants{"WTYPE": u(code), "TM": u(tiledTM), "TN": u(tiledTN), "R": u(perInv)}
	switch kern {
	case MatMulRows:
		entry, wg = "matvec", matvecWG
	case MatMulGroups:
		units := ceilDiv(k, 4) // matmul.wgsl: 4 elements
		switch file {
		case "matmul_vec4.wgsl":
			units = k / (4 + 4*code) // 16 bytes: 4 f32 or 8 f16
		case "matmul_q.wgsl":
			units = k / 8 // quarter blocks
		case "matmul_k.wgsl":
			units = k / 32 // units of 32 elements
		}
		entry, wg = "matvec_wg", groupsWG(units)
	case MatMulTiled:
		entry, wg = "tiled", tiledWG
	default:
		return fmt.Errorf("%s: unknown kernel %s", what, kern)
	}
	c["WG"] = u(wg)
	if uniformX {
		// The rows kernel with x in a uniform binding (matmul_*_ux.wgsl): the
		// binding covers exactly x's m rows, the array's declared size.
		file = strings.TrimSuffix(file, ".wgsl") + "_ux.wgsl"
		c["XV"] = u(m * k / 4)
		xBinding = engine.Binding{Buf: x.Buf, Offset: x.Offset, Size: uint64(4 * m * k)}
	}
	kernel, err := o.kernel(file, entry, c)
	if err != nil {
		return err
	}
	for i, part := range w.Parts {
		rows := part.Rows
		params := words(matmulUniform{m: uint32(m), n: uint32(rows), k: uint32(k), ldy: uint32(n), col0: uint32(w.Row0(i)),
			acc: b2u(opt.Accumulate), bias: hasBias})
		var groups [3]uint32
		switch kern {
		case MatMulRows:
			groups = engine.Grid(ceilDiv(rows, perInv), wg)
			groups[2] = uint32(m)
		case MatMulGroups:
			groups = engine.Grid(rows, 1)
			groups[2] = uint32(m)
		case MatMulTiled:
			groups = [3]uint32{uint32(ceilDiv(ceilDiv(rows, tiledTN), wg)), uint32(ceilDiv(m, tiledTM)), 1}
		}
		if err := rec.Dispatch(kernel, params, groups, xBinding, part.Binding(), biasBinding, y.Binding()); err != nil {
			return fmt.Errorf("%s part %d: %w", what, i, err)
		}
	}
	return nil
}

// matmulXTile records the xtiled kernel over windows of 4*b rows of x (the
// last window overlaps the one before and stores only its new rows).
func (o *Ops) matmulXTile(rec *engine.Recorder, what, file string, code int, x *engine.Tensor, w *engine.Weight, y *engine.Tensor, m, b int, hasBias uint32, biasBinding engine.Binding, opt MatMulOptions) error {
	k, n := w.Cols, w.Rows
	c := engine.Constants{"WTYPE": u(code), "WG": u(xtileWG), "TN": u(xtileTN),
		"TM": u(xtileRows), "B": u(b), "K4": u(k / 4), "XV": u(b * k / 4)}
	if code >= 2 { // q8_0, q4_0: quant words per block
		c["QW"] = u(8 - 4*(code-2))
	}
	kernel, err := o.kernel(file, "xtile", c)
	if err != nil {
		return err
	}
	window := xtileRows * b
	bindBytes := uint64(4 * b * k)
	for r0 := 0; r0 < m; r0 += window {
		s := min(r0, m-window)
		var xs [xtileRows]engine.Binding
		for a := range xs {
			xs[a] = engine.Binding{Buf: x.Buf, Offset: x.Offset + uint64(4*(s+a*b)*k), Size: bindBytes}
		}
		for i, part := range w.Parts {
			params := words(matmulUniform{m: uint32(window), n: uint32(part.Rows), k: uint32(k), ldy: uint32(n), col0: uint32(w.Row0(i)),
				acc: b2u(opt.Accumulate), bias: hasBias, row0: uint32(s), first: uint32(r0 - s)})
			groups := [3]uint32{uint32(b), uint32(ceilDiv(ceilDiv(part.Rows, xtileTN), xtileWG)), 1}
			if err := rec.Dispatch(kernel, params, groups, xs[0], xs[1], xs[2], xs[3], part.Binding(), biasBinding, y.Binding()); err != nil {
				return fmt.Errorf("%s part %d: %w", what, i, err)
			}
		}
	}
	return nil
}

// matmulMaxK is the longest row (K) kernel kern of file takes within
// loopBudget. The loops over a tile's rows and columns run unrolled on
// llvmpipe (Mesa 22.3) except in the tiles of f16 16-byte groups (9 counted
// iterations per 8 elements) and of the block types (9 per 32-element block for
// q8_0, fewer for the others), measured by running the kernels past the cap
// (TestLoopCapMatMul); every other kernel counts at most one iteration per 4
// elements.
func matmulMaxK(kern MatMulKernel, file string, t engine.DType) int {
	switch {
	case kern == MatMulTiled && file == "matmul_vec4.wgsl" && t == engine.F16:
		return loopBudget * 8 / 9
	case kern == MatMulTiled && (file == "matmul_q.wgsl" || file == "matmul_k.wgsl"):
		return loopBudget * 32 / 9
	}
	return loopBudget * 4
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
