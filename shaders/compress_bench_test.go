package shaders

// Benchmarks of the compressor (FREQKV_PROFILE=1 adds the GPU time of each kernel):
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
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/model/ggml"
)

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
		defer o.Release()
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
	defer o.Release()
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
