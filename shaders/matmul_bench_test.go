package shaders_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/shaders"
)

// Benchmarks of the matrix product. Each iteration records several products
// in one submit and waits once, so the numbers measure the device, not the
// submit. Run with e.g.
//
//	go test ./shaders -run '^$' -bench '^Benchmark(MatVec|MemRead|Prefill)$' -benchtime 5x

const matmulReps = 20

var benchTypes = []struct {
	dt engine.DType
	gt ggml.Type
}{{engine.F32, ggml.F32}, {engine.F16, ggml.F16}, {engine.Q8_0, ggml.Q8_0}, {engine.Q4_0, ggml.Q4_0},
	{engine.Q4_1, ggml.Q4_1}, {engine.Q5_0, ggml.Q5_0}, {engine.Q5_1, ggml.Q5_1}, {engine.IQ4_NL, ggml.IQ4_NL},
	{engine.Q4_K, ggml.Q4_K}, {engine.Q5_K, ggml.Q5_K}, {engine.Q6_K, ggml.Q6_K}}

// benchWeight uploads a random [n, k] weight of type dt.
func benchWeight(b *testing.B, dev *engine.Device, dt engine.DType, gt ggml.Type, n, k int) *engine.Weight {
	b.Helper()
	r := rand.New(rand.NewPCG(uint64(n), uint64(k)))
	v := make([]float32, n*k)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	var raw []byte
	var err error
	if !gt.CanQuantize() {
		raw = kquantBlocks(r, gt, n*k)
	} else if raw, err = ggml.Quantize(gt, v); err != nil {
		b.Fatal(err)
	}
	w, err := dev.UploadWeight("w", dt, n, k, raw, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Release)
	return w
}

// kquantBlocks is n elements of random blocks of a type ggml.Quantize lacks,
// with small finite scales (any bytes are valid quants).
func kquantBlocks(r *rand.Rand, t ggml.Type, n int) []byte {
	bb := t.BlockBytes()
	raw := make([]byte, n/t.BlockSize()*bb)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	scales := map[ggml.Type][]int{ggml.Q4_K: {0, 2}, ggml.Q5_K: {0, 2}, ggml.Q6_K: {208}, ggml.Q5_0: {0}, ggml.Q5_1: {0, 2}, ggml.IQ4_NL: {0}}[t]
	for b := 0; b < len(raw); b += bb {
		for _, o := range scales {
			binary.LittleEndian.PutUint16(raw[b+o:], ggml.F32ToF16(0.01))
		}
	}
	return raw
}

func benchTensor(b *testing.B, dev *engine.Device, rows, cols int) *engine.Tensor {
	b.Helper()
	t, err := dev.NewTensor("t", engine.F32, rows, cols)
	if err != nil {
		b.Fatal(err)
	}
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = float32(i%7) - 3
	}
	if err := t.UploadF32(v); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(t.Release)
	return t
}

// runProduct times products recorded many per submit and returns how many
// products it ran: up to matmulReps per submit, fewer when one product is
// slow, since a submit that runs past wgpu's 5-second poll timeout is
// treated as finished while it still runs (and the next submit crashes
// lavapipe).
func runProduct(b *testing.B, ops *shaders.Ops, x *engine.Tensor, w *engine.Weight, y *engine.Tensor, m int, opt shaders.MatMulOptions) (products int) {
	b.Helper()
	step := func(reps int) {
		rec := ops.Dev.NewRecorder()
		for range reps {
			if err := ops.MatMul(rec, x, w, y, m, opt); err != nil {
				b.Fatal(err)
			}
		}
		if err := rec.SubmitAndWait(); err != nil {
			b.Fatal(err)
		}
	}
	step(1) // compile and warm up
	start := time.Now()
	step(1)
	reps := int(max(1, min(matmulReps, 500*time.Millisecond/max(time.Since(start), time.Microsecond))))
	b.ResetTimer()
	for b.Loop() {
		step(reps)
	}
	return reps * b.N
}

var decodeShapes = [][2]int{{1024, 1024}, {4096, 4096}, {32000, 1024}}

// BenchmarkMatVec is the decode product (m = 1) in GB/s of weight bytes read,
// to compare with BenchmarkMemRead over the same bytes.
func BenchmarkMatVec(b *testing.B) {
	dev := gputest.Device(b)
	ops := shaders.New(dev)
	for _, s := range decodeShapes {
		n, k := s[0], s[1]
		x, y := benchTensor(b, dev, 1, k), benchTensor(b, dev, 1, n)
		for _, bt := range benchTypes {
			w := benchWeight(b, dev, bt.dt, bt.gt, n, k)
			for _, opt := range []shaders.MatMulOptions{{}, {Kernel: shaders.MatMulRows, NarrowLoads: true}, {Kernel: shaders.MatMulGroups}} {
				name := opt.Kernel.String()
				if opt.NarrowLoads {
					if bt.dt.BlockSize() > 1 {
						continue // one kernel file for the block types
					}
					name += "-narrow"
				}
				if opt.Kernel == shaders.MatMulGroups && dev.Info.IsCPU() && n*k > 1<<20 {
					continue // slow on llvmpipe: see the 1024x1024 number
				}
				b.Run(fmt.Sprintf("%dx%d/%s/%s", n, k, bt.dt, name), func(b *testing.B) {
					products := runProduct(b, ops, x, w, y, 1, opt)
					b.ReportMetric(float64(w.Bytes())*float64(products)/b.Elapsed().Seconds()/1e9, "GB/s")
				})
			}
		}
	}
}

// BenchmarkMemRead sums a []uint64 as large as each decode weight, in f32,
// f16, q8_0 and q4_0: the rate at which one host core reads memory, the
// ceiling a memory-bound product on a CPU adapter approaches.
func BenchmarkMemRead(b *testing.B) {
	for _, s := range decodeShapes {
		for _, bt := range benchTypes {
			rb, _ := bt.dt.RowBytes(s[1])
			bytes := int(rb) * s[0]
			buf := make([]uint64, bytes/8)
			for i := range buf {
				buf[i] = uint64(i)
			}
			b.Run(fmt.Sprintf("%dx%d/%s", s[0], s[1], bt.dt), func(b *testing.B) {
				var s0, s1, s2, s3 uint64 // four chains, so adds keep up with loads
				for b.Loop() {
					for i := 0; i+4 <= len(buf); i += 4 {
						s0 += buf[i]
						s1 += buf[i+1]
						s2 += buf[i+2]
						s3 += buf[i+3]
					}
				}
				memSink = s0 + s1 + s2 + s3
				b.ReportMetric(float64(len(buf)*8)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			})
		}
	}
}

var memSink uint64

// BenchmarkPrefill is the tiled product for m prompt rows, in GFLOP/s (2mnk
// flops per product).
func BenchmarkPrefill(b *testing.B) {
	dev := gputest.Device(b)
	ops := shaders.New(dev)
	for _, s := range [][3]int{{64, 1024, 1024}, {512, 1024, 1024}} {
		m, n, k := s[0], s[1], s[2]
		x, y := benchTensor(b, dev, m, k), benchTensor(b, dev, m, n)
		for _, bt := range benchTypes {
			w := benchWeight(b, dev, bt.dt, bt.gt, n, k)
			b.Run(fmt.Sprintf("M%d_N%d_K%d/%s", m, n, k, bt.dt), func(b *testing.B) {
				products := runProduct(b, ops, x, w, y, m, shaders.MatMulOptions{})
				b.ReportMetric(2*float64(m*n*k)*float64(products)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkMatVecUniformX compares the rows kernel with x in a storage binding
// and in a uniform one side by side: rounds alternate between the two in one
// process (the machine is shared, so only ratios measured together mean
// anything), and the ratio of their median times is reported.
func BenchmarkMatVecUniformX(b *testing.B) {
	dev := gputest.Device(b)
	ops := shaders.New(dev)
	for _, s := range [][2]int{{1024, 1024}, {2816, 1024}, {1024, 2816}} {
		n, k := s[0], s[1]
		x, y := benchTensor(b, dev, 1, k), benchTensor(b, dev, 1, n)
		for _, bt := range benchTypes[1:] {
			w := benchWeight(b, dev, bt.dt, bt.gt, n, k)
			b.Run(fmt.Sprintf("%dx%d/%s", n, k, bt.dt), func(b *testing.B) {
				opts := []shaders.MatMulOptions{{Kernel: shaders.MatMulRows, StorageX: true}, {Kernel: shaders.MatMulRows}}
				var times [2][]time.Duration
				round := func(opt shaders.MatMulOptions) time.Duration {
					rec := ops.Dev.NewRecorder()
					for range matmulReps {
						if err := ops.MatMul(rec, x, w, y, 1, opt); err != nil {
							b.Fatal(err)
						}
					}
					start := time.Now()
					if err := rec.SubmitAndWait(); err != nil {
						b.Fatal(err)
					}
					return time.Since(start)
				}
				round(opts[0])
				round(opts[1])
				for b.Loop() {
					for i, opt := range opts {
						times[i] = append(times[i], round(opt))
					}
				}
				med := func(d []time.Duration) float64 {
					d = append([]time.Duration(nil), d...)
					slices.Sort(d)
					return d[len(d)/2].Seconds()
				}
				gbs := func(i int) float64 { return float64(w.Bytes()) * matmulReps / med(times[i]) / 1e9 }
				b.ReportMetric(gbs(0), "GB/s-storage")
				b.ReportMetric(gbs(1), "GB/s-uniform")
				b.ReportMetric(med(times[0])/med(times[1]), "speedup")
			})
		}
	}
}

// cpuTime is the CPU time this process has used (every lavapipe thread included): on a
// shared machine it varies far less with other jobs than wall time does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPrefillXTiled compares the prefill products of the tiled kernel (x in storage),
// the xtiled one with one row block per window (a dispatch per 4 rows, as it was first
// written) and the xtiled one with its full windows (up to 16 row blocks per dispatch) side
// by side: rounds alternate between them in one process, and each reports GFLOP/s from its
// median round (wall time) and GFLOP per CPU-second (all lavapipe threads; steadier on a
// shared machine), with the ratios of median CPU times to the tiled kernel's. Shapes are
// the medium model's: the attention and gate/up products (K = 1024) and the down product
// (K = 2816), 256 rows (a prefill chunk).
func BenchmarkPrefillXTiled(b *testing.B) {
	dev := gputest.Device(b)
	ops := shaders.New(dev)
	variants := []struct {
		name string
		opt  shaders.MatMulOptions
	}{
		{"tiled", shaders.MatMulOptions{Kernel: shaders.MatMulTiled}},
		{"xtiled1", shaders.MatMulOptions{Kernel: shaders.MatMulXTiled, XTileRows: 1}},
		{"xtiled", shaders.MatMulOptions{Kernel: shaders.MatMulXTiled}},
	}
	for _, s := range [][3]int{{256, 1024, 1024}, {256, 2816, 1024}, {256, 1024, 2816}} {
		m, n, k := s[0], s[1], s[2]
		x, y := benchTensor(b, dev, m, k), benchTensor(b, dev, m, n)
		for _, bt := range benchTypes[:4] {
			w := benchWeight(b, dev, bt.dt, bt.gt, n, k)
			b.Run(fmt.Sprintf("M%d_N%d_K%d/%s", m, n, k, bt.dt), func(b *testing.B) {
				wall, cpu := make([][]time.Duration, len(variants)), make([][]time.Duration, len(variants))
				round := func(i int) {
					rec := ops.Dev.NewRecorder()
					if err := ops.MatMul(rec, x, w, y, m, variants[i].opt); err != nil {
						b.Fatal(err)
					}
					start, c0 := time.Now(), cpuTime()
					if err := rec.SubmitAndWait(); err != nil {
						b.Fatal(err)
					}
					wall[i], cpu[i] = append(wall[i], time.Since(start)), append(cpu[i], cpuTime()-c0)
				}
				for i := range variants {
					round(i) // compile
					wall[i], cpu[i] = nil, nil
				}
				for b.Loop() {
					for i := range variants {
						round(i)
					}
				}
				med := func(d []time.Duration) float64 {
					d = append([]time.Duration(nil), d...)
					slices.Sort(d)
					return d[len(d)/2].Seconds()
				}
				flops := 2 * float64(m*n*k) / 1e9
				for i, v := range variants {
					b.ReportMetric(flops/med(wall[i]), "GFLOP/s-"+v.name)
					b.ReportMetric(flops/med(cpu[i]), "GFLOP/cpu-s-"+v.name)
					if i > 0 {
						b.ReportMetric(med(cpu[0])/med(cpu[i]), "speedup-"+v.name)
					}
				}
			})
		}
	}
}
