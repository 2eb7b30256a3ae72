package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/shaders"
)

// Engine overheads, measured where the runtime pays them: per dispatch inside
// one submit, per submit, and per pipeline at start-up. Run with e.g.
//
//	go test ./engine -run '^$' -bench 'Dispatch|Pipeline' -benchtime 20x

// tinyKernel writes one word: a dispatch with no work to speak of.
const tinyKernel = `
struct Params { v: u32, }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn main() { out[0] = p.v; }
`

// BenchmarkDispatch records n one-invocation dispatches into one submit and
// waits once; ns/dispatch at n = 1 is the cost of a whole submit and wait, at
// large n the recorder's and the driver's cost per dispatch.
func BenchmarkDispatch(b *testing.B) {
	dev := gputest.Device(b)
	k, err := dev.Kernel("bench/tiny", tinyKernel, "main", nil)
	if err != nil {
		b.Fatal(err)
	}
	out, err := dev.NewBuffer("out", 4)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Release()
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("n%d", n), func(b *testing.B) {
			for b.Loop() {
				rec := dev.NewRecorder()
				for i := range n {
					if err := rec.Dispatch(k, []uint32{uint32(i)}, [3]uint32{1, 1, 1}, out.All()); err != nil {
						b.Fatal(err)
					}
				}
				if err := rec.SubmitAndWait(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/dispatch")
		})
	}
}

// BenchmarkPipelineCreation builds each matmul and embedding kernel on a
// fresh device, so nothing is cached in the engine, and reports two costs in
// ms: create-ms, the pipeline creation alone, and first-ms, how much longer
// the first submit that uses the kernel takes than the second: the whole
// start-up cost, creation included (a driver may finish compiling at the
// first dispatch). Opening the device is not timed.
func BenchmarkPipelineCreation(b *testing.B) {
	gputest.Device(b) // skip without an adapter
	type launch func(ops *shaders.Ops, rec *engine.Recorder, w *engine.Weight, x, y, ids *engine.Tensor) error
	var names []string
	kernels := map[string]launch{}
	for _, kern := range shaders.MatMulKernels {
		name := "matmul/" + kern.String()
		names = append(names, name)
		kernels[name] = func(ops *shaders.Ops, rec *engine.Recorder, w *engine.Weight, x, y, _ *engine.Tensor) error {
			return ops.MatMul(rec, x, w, y, 1, shaders.MatMulOptions{Kernel: kern})
		}
	}
	names = append(names, "embedding")
	kernels["embedding"] = func(ops *shaders.Ops, rec *engine.Recorder, w *engine.Weight, _, y, ids *engine.Tensor) error {
		return ops.Embedding(rec, ids, w, y, 1)
	}
	for _, name := range names {
		for _, dt := range []engine.DType{engine.F32, engine.F16, engine.Q8_0, engine.Q4_0} {
			b.Run(fmt.Sprintf("%s/%s", name, dt), func(b *testing.B) {
				var create, first time.Duration
				for b.Loop() {
					b.StopTimer()
					dev, err := engine.Open(engine.Options{})
					if err != nil {
						b.Fatal(err)
					}
					ops := shaders.New(dev)
					rb, _ := dt.RowBytes(32)
					w, err := dev.UploadWeight("w", dt, 1, 32, make([]byte, rb), 0)
					if err != nil {
						b.Fatal(err)
					}
					x, _ := dev.NewTensor("x", engine.F32, 1, 32)
					y, _ := dev.NewTensor("y", engine.F32, 1, 32)
					ids, err := dev.NewTensor("ids", engine.U32, 1, 1)
					if err != nil {
						b.Fatal(err)
					}
					run := func() time.Duration {
						start := time.Now()
						rec := dev.NewRecorder()
						if err := kernels[name](ops, rec, w, x, y, ids); err != nil {
							b.Fatal(err)
						}
						if err := rec.SubmitAndWait(); err != nil {
							b.Fatal(err)
						}
						return time.Since(start)
					}
					b.StartTimer()
					cold := run()
					b.StopTimer()
					first += cold - run()
					create += dev.CompileTime()
					dev.Close()
					b.StartTimer()
				}
				b.ReportMetric(float64(create.Microseconds())/1e3/float64(b.N), "create-ms")
				b.ReportMetric(float64(first.Microseconds())/1e3/float64(b.N), "first-ms")
			})
		}
	}
}
