package shaders

// Tests of the compressor against the float64 reference (both FFT paths), and its
// benchmarks (FREQKV_PROFILE=1 adds the GPU time of each kernel):
//
//	go test ./shaders -run XXX -bench Compress -benchtime 3x

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/model/ggml"
)

func dctColumn(x []float64, rows, cols, c int) []float64 {
	out := make([]float64, rows)
	for r := range out {
		out[r] = x[r*cols+c]
	}
	return out
}

func dctRandMatrix(r *rand.Rand, n int) ([]float32, []float64) {
	f := make([]float32, n)
	d := make([]float64, n)
	for i := range f {
		f[i] = float32(r.Float64()*2 - 1)
		d[i] = float64(f[i])
	}
	return f, d
}

// normErr is max|got-want| / max|want|.
func dctNormErr(got []float32, want []float64) float64 {
	maxd, maxw := 0.0, 0.0
	for i := range want {
		d := math.Abs(float64(got[i]) - want[i])
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		maxd = math.Max(maxd, d)
		maxw = math.Max(maxw, math.Abs(want[i]))
	}
	return maxd / maxw
}

func TestDCTAgainstFloat64(t *testing.T) {
	dev := gputest.Device(t)
	o := New(dev)
	r := rand.New(rand.NewPCG(3, 4))
	for _, blue := range []bool{false, true} {
		forceBluestein = blue
		for _, tc := range []struct{ L, C int }{{1, 1}, {2, 3}, {3, 1}, {5, 8}, {8, 5}, {12, 4}, {37, 2}, {100, 6}, {1000, 1}, {4092, 2}, {4096, 4}} {
			x32, x64 := dctRandMatrix(r, tc.L*tc.C)
			x, _ := dev.NewTensor("x", engine.F32, tc.L, tc.C)
			y, _ := dev.NewTensor("y", engine.F32, tc.L, tc.C)
			sc, _ := dev.NewTensor("scratch", engine.F32, 1, DCTScratch(tc.L, tc.C, 0))
			x.UploadF32(x32)
			want2 := make([]float64, tc.L*tc.C)
			want3 := make([]float64, tc.L*tc.C)
			for c := 0; c < tc.C; c++ {
				d2 := freqkv.DCT2Ortho(dctColumn(x64, tc.L, tc.C, c))
				d3 := freqkv.DCT3Ortho(dctColumn(x64, tc.L, tc.C, c))
				for row := 0; row < tc.L; row++ {
					want2[row*tc.C+c] = d2[row]
					want3[row*tc.C+c] = d3[row]
				}
			}
			for i, want := range [][]float64{want2, want3} {
				rec := dev.NewRecorder()
				var err error
				if i == 0 {
					err = o.DCT2(rec, x, y, sc, tc.L, tc.C)
				} else {
					err = o.DCT3(rec, x, y, sc, tc.L, tc.C)
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := rec.SubmitAndWait(); err != nil {
					t.Fatal(err)
				}
				got, _ := y.ReadF32()
				e := dctNormErr(got, want)
				if e > 1e-5 {
					t.Errorf("bluestein=%v DCT%d L=%d C=%d: error %.3g", blue, i+2, tc.L, tc.C, e)
				} else {
					t.Logf("bluestein=%v DCT%d L=%d C=%d: error %.3g", blue, i+2, tc.L, tc.C, e)
				}
			}
			x.Release()
			y.Release()
			sc.Release()
		}
	}
	forceBluestein = false
}

// compressRef applies CompressParams to a float64 copy of the cache the way
// freqkv.RefCache does, returning rows [0, S+m+R) of each matrix.
func compressRef(t *testing.T, cache []float64, p CompressParams) [][]float64 {
	c := p.Channels
	out := make([][]float64, p.Batches)
	for b := range out {
		mat := cache[b*p.BatchStride*c:]
		span := mat[p.Sink*c : (p.Sink+p.Span)*c]
		y, err := freqkv.Compress(append([]float64(nil), span...), p.Span, c, p.Kept)
		if err != nil {
			t.Fatal(err)
		}
		rows := append([]float64(nil), mat[:p.Sink*c]...)
		rows = append(rows, y...)
		rows = append(rows, mat[(p.Sink+p.Span)*c:(p.Sink+p.Span+p.Recent)*c]...)
		out[b] = rows
	}
	return out
}

// TestGridSplitting runs transforms with a tiny per-dimension workgroup limit, so every
// grid is split into several dispatches (k, group and row offsets), and with a binding
// limit of about 1.5 matrices, so the caches are bound as several unaligned ranges.
func TestGridSplitting(t *testing.T) {
	defer func(m int) { maxGroups, dctSplitBindings = m, false }(maxGroups)
	maxGroups, dctSplitBindings = 2, true
	TestDCTAgainstFloat64(t)
	TestCompressInPlace(t)
}

var dctSplitBindings bool

func TestCompressInPlace(t *testing.T) {
	dev := gputest.Device(t)
	o := New(dev)
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		p     CompressParams
		dt    engine.DType
		chans int // channels per pass (0: default)
		blue  bool
	}{
		{CompressParams{Sink: 0, Span: 8, Kept: 4, Recent: 0, Channels: 1, Batches: 1, BatchStride: 8}, engine.F32, 0, false},
		{CompressParams{Sink: 4, Span: 12, Kept: 6, Recent: 3, Channels: 6, Batches: 2, BatchStride: 20}, engine.F32, 0, false},
		{CompressParams{Sink: 4, Span: 12, Kept: 6, Recent: 3, Channels: 6, Batches: 2, BatchStride: 20}, engine.F16, 0, false},
		{CompressParams{Sink: 2, Span: 37, Kept: 11, Recent: 30, Channels: 10, Batches: 3, BatchStride: 71}, engine.F16, 4, false},
		{CompressParams{Sink: 2, Span: 37, Kept: 11, Recent: 30, Channels: 9, Batches: 3, BatchStride: 71}, engine.F32, 8, true},
		{CompressParams{Sink: 4, Span: 4092, Kept: 2046, Recent: 0, Channels: 8, Batches: 2, BatchStride: 4096}, engine.F32, 0, false},
		{CompressParams{Sink: 4, Span: 4092, Kept: 2046, Recent: 0, Channels: 8, Batches: 2, BatchStride: 4096}, engine.F16, 0, true},
		{CompressParams{Sink: 1, Span: 100, Kept: 99, Recent: 5, Channels: 4, Batches: 1, BatchStride: 106}, engine.F32, 0, false},
		{CompressParams{Sink: 0, Span: 2, Kept: 1, Recent: 7, Channels: 2, Batches: 5, BatchStride: 9}, engine.F16, 0, false},
	} {
		forceBluestein = tc.blue
		p := tc.p
		rows := p.Batches * p.BatchStride
		x32, x64 := dctRandMatrix(r, rows*p.Channels)
		cache, err := dev.NewTensor("cache", tc.dt, rows, p.Channels)
		if err != nil {
			t.Fatal(err)
		}
		if tc.dt == engine.F16 {
			b := make([]byte, 2*len(x32))
			for i, v := range x32 {
				h := ggml.F32ToF16(v)
				b[2*i], b[2*i+1] = byte(h), byte(h>>8)
				x64[i] = float64(ggml.F16ToF32(h))
			}
			cache.Upload(b)
		} else {
			cache.UploadF32(x32)
		}
		sc, _ := dev.NewTensor("scratch", engine.F32, 1, CompressScratch(p, tc.chans))
		rec := dev.NewRecorder()
		if dctSplitBindings {
			bindingLimit = uint64(3*p.BatchStride*p.Channels*elemBytes(tc.dt)/2 + 256)
			gs, err := o.groups(cache, p.Batches, p.BatchStride, p.Sink+p.Span+p.Recent)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d matrices bound as %d ranges", p.Batches, len(gs))
		}
		err = o.Compress(rec, cache, sc, p)
		bindingLimit = 0
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.SubmitAndWait(); err != nil {
			t.Fatal(err)
		}
		raw, _ := cache.Buf.Read(0, cache.Bytes())
		got := make([]float32, rows*p.Channels)
		for i := range got {
			if tc.dt == engine.F16 {
				got[i] = ggml.F16ToF32(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
			} else {
				got[i] = math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
			}
		}
		want := compressRef(t, x64, p)
		tol := 1e-5
		if tc.dt == engine.F16 {
			tol = 1.0/2048 + 2e-5
		}
		worst := 0.0
		for b, w := range want {
			e := dctNormErr(got[b*p.BatchStride*p.Channels:], w)
			worst = math.Max(worst, e)
		}
		if worst > tol {
			t.Errorf("%+v %s bluestein=%v: error %.3g > %.3g", p, tc.dt, tc.blue, worst, tol)
		} else {
			t.Logf("%+v %s bluestein=%v: error %.3g", p, tc.dt, tc.blue, worst)
		}
		cache.Release()
		sc.Release()
	}
	forceBluestein = false
}

// llama7B is one layer of a Llama-2-7B-shaped cache: 32 KV heads of 128 channels,
// 4096 rows, f16, and the weights a decode step reads per layer (4*4096^2 attention +
// 3*4096*11008 FFN = 202M parameters, 405 MB in f16).
const (
	dctLlamaChannels    = 4096
	dctLlamaCacheRows   = 4096
	dctLlamaLayerParams = 4*4096*4096 + 3*4096*11008
)

var (
	dctBandwidthOnce                        sync.Once
	dctMemReadGBs, dctMatvecGBs, dctReadGBs float64
	dctBandwidthErr                         error
)

// dctReadKernel is the simplest barrier-free read of a buffer: each invocation sums 16
// vec4<u32> strided by the grid, so adjacent invocations read adjacent words.
const dctReadKernel = `
struct Params { n: u32, stride: u32, }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  var acc = vec4<u32>(0u);
  for (var r = 0u; r < 16u; r++) {
    let j = i + r * p.stride;
    if (j < p.n) { acc += src[j]; }
  }
  dst[i] = acc.x ^ acc.y ^ acc.z ^ acc.w;
}`

// dctMeasureBandwidth measures, in this run, the host's memory-read bandwidth (a Go loop
// summing a []uint64 as large as a layer's K and V cache) and the decode matvec
// bandwidth (shaders.MatMul of one row against an f16 [4096, 4096] weight).
func dctMeasureBandwidth(b *testing.B, dev *engine.Device) {
	dctBandwidthOnce.Do(func() {
		words := make([]uint64, 2*dctLlamaCacheRows*dctLlamaChannels*2/8)
		for i := range words {
			words[i] = uint64(i)
		}
		best := time.Duration(math.MaxInt64)
		var sink uint64
		for rep := 0; rep < 5; rep++ {
			start := time.Now()
			var s0, s1, s2, s3 uint64
			for i := 0; i+3 < len(words); i += 4 {
				s0 += words[i]
				s1 += words[i+1]
				s2 += words[i+2]
				s3 += words[i+3]
			}
			sink += s0 + s1 + s2 + s3
			best = min(best, time.Since(start))
		}
		_ = sink
		dctMemReadGBs = float64(8*len(words)) / best.Seconds() / 1e9

		o := New(dev)
		const n, k, reps = 4096, 4096, 16
		wdata := make([]byte, 2*n*k)
		r := rand.New(rand.NewPCG(7, 8))
		for i := 0; i < n*k; i++ {
			h := ggml.F32ToF16(float32(r.Float64()*2 - 1))
			wdata[2*i], wdata[2*i+1] = byte(h), byte(h>>8)
		}
		w, err := dev.UploadWeight("w", engine.F16, n, k, wdata, 0)
		if err != nil {
			dctBandwidthErr = err
			return
		}
		defer w.Release()
		x, _ := dev.NewTensor("x", engine.F32, 1, k)
		y, _ := dev.NewTensor("y", engine.F32, 1, n)
		defer x.Release()
		defer y.Release()
		best = time.Duration(math.MaxInt64)
		for rep := 0; rep < 4; rep++ {
			rec := dev.NewRecorder()
			start := time.Now()
			for i := 0; i < reps; i++ {
				if err := o.MatMul(rec, x, w, y, 1, MatMulOptions{}); err != nil {
					dctBandwidthErr = err
					return
				}
			}
			if err := rec.SubmitAndWait(); err != nil {
				dctBandwidthErr = err
				return
			}
			if rep > 0 { // the first compiles
				best = min(best, time.Since(start))
			}
		}
		dctMatvecGBs = float64(reps*2*n*k) / best.Seconds() / 1e9

		kern, err := dev.Kernel("bench-read", dctReadKernel, "main", nil)
		if err != nil {
			dctBandwidthErr = err
			return
		}
		vec4s := n * k * 2 / 16
		stride := vec4s / 16
		out, _ := dev.NewTensor("out", engine.U32, 1, stride)
		defer out.Release()
		best = time.Duration(math.MaxInt64)
		for rep := 0; rep < 4; rep++ {
			rec := dev.NewRecorder()
			start := time.Now()
			for i := 0; i < reps; i++ {
				if err := rec.Dispatch(kern, []uint32{uint32(vec4s), uint32(stride)}, [3]uint32{uint32(stride / 64), 1, 1}, w.Parts[0].Binding(), out.Binding()); err != nil {
					dctBandwidthErr = err
					return
				}
			}
			if err := rec.SubmitAndWait(); err != nil {
				dctBandwidthErr = err
				return
			}
			best = min(best, time.Since(start))
		}
		dctReadGBs = float64(reps*2*n*k) / best.Seconds() / 1e9
	})
	if dctBandwidthErr != nil {
		b.Fatal(dctBandwidthErr)
	}
}

// BenchmarkCompressLlama7BLayer compresses one layer's K and V (4096 channels, N = 4096)
// in place, reporting beside the time:
//   - GB/s: the bytes a compression must move (read L rows, write m rows, of K and V) per second,
//   - mem-GB/s: the host's memory-read bandwidth measured in the same run,
//   - matvec-GB/s: the f16 decode matvec bandwidth measured in the same run,
//   - decode-ms: one decode step of the layer at that bandwidth (405 MB of weights),
//   - amortised-%: the compression spread over the L-m decode steps between two
//     compressions, as a percentage of that decode step;
//   - read-GB/s, amortised-%-at-read: the same against the simplest barrier-free read
//     kernel's bandwidth, the floor a faster matvec could reach.
func BenchmarkCompressLlama7BLayer(b *testing.B) {
	dev := gputest.Device(b)
	dctMeasureBandwidth(b, dev)
	o := New(dev)
	for _, tc := range []struct {
		sink int
		dt   engine.DType
	}{{4, engine.F16}, {0, engine.F16}, {4, engine.F32}} {
		span := dctLlamaCacheRows - tc.sink
		p := CompressParams{Sink: tc.sink, Span: span, Kept: span / 2, Channels: dctLlamaChannels, Batches: 2, BatchStride: dctLlamaCacheRows}
		b.Run(fmt.Sprintf("L=%d/m=%d/%s", p.Span, p.Kept, tc.dt), func(b *testing.B) {
			cache, err := dev.NewTensor("cache", tc.dt, 2*dctLlamaCacheRows, dctLlamaChannels)
			if err != nil {
				b.Fatal(err)
			}
			defer cache.Release()
			data := make([]byte, cache.Bytes())
			r := rand.New(rand.NewPCG(9, 10))
			for i := range data {
				data[i] = byte(r.IntN(256) & 0x3b) // small finite values in both f16 and f32
			}
			if err := cache.Upload(data); err != nil {
				b.Fatal(err)
			}
			scratch, err := dev.NewTensor("scratch", engine.F32, 1, CompressScratch(p, 0))
			if err != nil {
				b.Fatal(err)
			}
			defer scratch.Release()
			run := func() {
				rec := dev.NewRecorder()
				if err := o.Compress(rec, cache, scratch, p); err != nil {
					b.Fatal(err)
				}
				if err := rec.SubmitAndWait(); err != nil {
					b.Fatal(err)
				}
			}
			run() // compiles the kernels and uploads the tables
			if os.Getenv("FREQKV_PROFILE") != "" && dev.Timestamps && b.N == 1 {
				prof, err := dev.NewProfile()
				if err != nil {
					b.Fatal(err)
				}
				rec := dev.NewRecorder()
				rec.Profile = prof
				if err := o.Compress(rec, cache, scratch, p); err != nil {
					b.Fatal(err)
				}
				if err := rec.SubmitAndWait(); err != nil {
					b.Fatal(err)
				}
				for _, k := range prof.Sorted() {
					b.Logf("%-52s %3d dispatches %v", k.Name, k.Calls, k.Total)
				}
				prof.Release()
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run()
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			moved := float64((p.Span + p.Kept) * p.Channels * p.Batches * elemBytes(tc.dt))
			decode := float64(2*dctLlamaLayerParams) / (dctMatvecGBs * 1e9)
			b.ReportMetric(moved/sec/1e9, "GB/s")
			b.ReportMetric(dctMemReadGBs, "mem-GB/s")
			b.ReportMetric(dctMatvecGBs, "matvec-GB/s")
			b.ReportMetric(decode*1e3, "decode-ms")
			b.ReportMetric(100*sec/float64(p.Span-p.Kept)/decode, "amortised-%")
			b.ReportMetric(dctReadGBs, "read-GB/s")
			b.ReportMetric(100*sec/float64(p.Span-p.Kept)/(float64(2*dctLlamaLayerParams)/(dctReadGBs*1e9)), "amortised-%-at-read")
		})
	}
}
