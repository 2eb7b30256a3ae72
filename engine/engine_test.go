package engine_test

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/shaders"
	"github.com/stretchr/testify/require"
)

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.Float64()*2 - 1)
	}
	return v
}

func TestDeviceAndRoundTrip(t *testing.T) {
	dev := gputest.Device(t)
	require.NotZero(t, dev.MaxBinding())
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 64, 1000, 70000 * 64 / 64} {
		a, b := randVec(r, n), randVec(r, n)
		ta, err := dev.NewTensor("a", engine.F32, 1, n)
		require.NoError(t, err)
		tb, _ := dev.NewTensor("b", engine.F32, 1, n)
		to, _ := dev.NewTensor("out", engine.F32, 1, n)
		require.NoError(t, ta.UploadF32(a))
		require.NoError(t, tb.UploadF32(b))
		poison := make([]float32, n)
		for i := range poison {
			poison[i] = math.Float32frombits(0x7fc00000) // NaN: an unwritten element fails
		}
		require.NoError(t, to.UploadF32(poison))
		rec := dev.NewRecorder()
		require.NoError(t, shaders.New(dev).Add(rec, ta, tb, to, n))
		require.NoError(t, rec.SubmitAndWait())
		got, err := to.ReadF32()
		require.NoError(t, err)
		for i := range got {
			require.Equal(t, a[i]+b[i], got[i], "n=%d i=%d", n, i)
		}
		ta.Release()
		tb.Release()
		to.Release()
	}
}

func TestBufferLimits(t *testing.T) {
	dev := gputest.Device(t)
	_, err := dev.NewBuffer("huge", dev.Limits.MaxBufferSize+1)
	require.ErrorContains(t, err, "maxBufferSize")
	_, err = dev.NewTensor("wide", engine.F32, int(dev.MaxBinding()/4/1024)+1, 1024)
	require.ErrorContains(t, err, "binding limit")
}

// TestWeightChunks uploads a matrix in parts smaller than the binding limit
// and reads every part back: rows land in the right part, in order.
func TestWeightChunks(t *testing.T) {
	dev := gputest.Device(t)
	r := rand.New(rand.NewPCG(3, 4))
	const rows, cols = 37, 10
	data := randVec(r, rows*cols)
	w, err := dev.UploadWeight("w", engine.F32, rows, cols, wgpuBytes(data), 4*cols*8) // 8 rows per part
	require.NoError(t, err)
	defer w.Release()
	require.Len(t, w.Parts, 5)
	for i, p := range w.Parts {
		got, err := p.ReadF32()
		require.NoError(t, err)
		require.Equal(t, data[w.Row0(i)*cols:(w.Row0(i)+p.Rows)*cols], got)
	}
	_, err = dev.UploadWeight("w", engine.F32, rows, cols, wgpuBytes(data[:10]), 0)
	require.ErrorContains(t, err, "want")
}

// TestManyDispatchesOneSubmit records more dispatches than the parameter
// arena holds, so the recorder must flush transparently; each dispatch
// adds 1 to a running value.
func TestManyDispatchesOneSubmit(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	a, _ := dev.NewTensor("a", engine.F32, 1, 3)
	one, _ := dev.NewTensor("one", engine.F32, 1, 3)
	b, _ := dev.NewTensor("b", engine.F32, 1, 3)
	require.NoError(t, a.UploadF32([]float32{0.5, 1.5, -2}))
	require.NoError(t, one.UploadF32([]float32{1, 1, 1}))
	rec := dev.NewRecorder()
	const n = 5000 // over the arena's 4096 slots
	for i := 0; i < n/2; i++ {
		require.NoError(t, ops.Add(rec, a, one, b, 3))
		require.NoError(t, ops.Add(rec, b, one, a, 3))
	}
	require.NoError(t, rec.SubmitAndWait())
	got, err := a.ReadF32()
	require.NoError(t, err)
	require.Equal(t, []float32{0.5 + n, 1.5 + n, -2 + n}, got)
}

func TestProfileCountsDispatches(t *testing.T) {
	dev := gputest.Device(t)
	if !dev.Timestamps {
		t.Skip("adapter has no timestamp queries")
	}
	prof, err := dev.NewProfile()
	require.NoError(t, err)
	defer prof.Release()
	a, _ := dev.NewTensor("a", engine.F32, 1, 4096)
	b, _ := dev.NewTensor("b", engine.F32, 1, 4096)
	rec := dev.NewRecorder()
	rec.Profile = prof
	for i := 0; i < 3; i++ {
		require.NoError(t, shaders.New(dev).Scale(rec, a, b, 4096, 2))
	}
	require.NoError(t, rec.SubmitAndWait())
	ks := prof.Sorted()
	require.Len(t, ks, 1)
	require.Equal(t, 3, ks[0].Calls)
	require.Positive(t, ks[0].Total)
}

func wgpuBytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// TestLongSubmits runs two submits of several seconds each. wgpu's blocking
// poll gives up after 5 s; waiting on it made lavapipe crash on the next
// submit. The recorder must wait for real completion.
func TestLongSubmits(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 15 s")
	}
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	const n = 8 << 20 // 32 MiB per tensor
	a, err := dev.NewTensor("a", engine.F32, 1, n)
	require.NoError(t, err)
	defer a.Release()
	b, _ := dev.NewTensor("b", engine.F32, 1, n)
	defer b.Release()
	require.NoError(t, a.UploadF32(make([]float32, n)))
	for round := 0; round < 2; round++ {
		rec := dev.NewRecorder()
		start := time.Now()
		for i := 0; i < 200; i++ {
			require.NoError(t, ops.Scale(rec, a, b, n, 1))
			require.NoError(t, ops.Scale(rec, b, a, n, 1))
		}
		require.NoError(t, rec.SubmitAndWait())
		t.Logf("submit %d took %v", round, time.Since(start))
	}
	got, err := a.ReadF32()
	require.NoError(t, err)
	require.Len(t, got, n)
}

// Check keeps the first error: later launches are skipped, Err and SubmitAndWait report it.
func TestRecorderCheckIsSticky(t *testing.T) {
	dev := gputest.Device(t)
	rec := dev.NewRecorder()
	rec.Check(nil)
	require.NoError(t, rec.Err())
	first := errors.New("first")
	rec.Check(first)
	rec.Check(errors.New("second"))
	require.ErrorIs(t, rec.Err(), first)
	buf, err := dev.NewBuffer("b", 16)
	require.NoError(t, err)
	defer buf.Release()
	require.ErrorIs(t, rec.Copy(buf, 0, buf, 8, 4), first)
	require.ErrorIs(t, rec.SubmitAndWait(), first)
}

// TestCachedKernel: the lookup finds a kernel only once it is compiled, and returns that
// pipeline, keyed by name, entry and constants (the Ops skip re-expanding a kernel's source
// on every dispatch through it).
func TestCachedKernel(t *testing.T) {
	dev := gputest.Device(t)
	c := engine.Constants{"V": "3u"}
	if _, ok := dev.CachedKernel("test/cached", "main", c); ok {
		t.Fatal("a kernel never compiled was found")
	}
	src := "struct Params { v: u32, }\n@group(0) @binding(0) var<uniform> p: Params;\n@group(0) @binding(1) var<storage, read_write> out: array<u32>;\n@compute @workgroup_size(1)\nfn main() { out[0] = p.v + V; }\n"
	k, err := dev.Kernel("test/cached", src, "main", c)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := dev.CachedKernel("test/cached", "main", c); !ok || got != k {
		t.Fatalf("lookup after compiling: %v, %v", got, ok)
	}
	if _, ok := dev.CachedKernel("test/cached", "main", engine.Constants{"V": "4u"}); ok {
		t.Fatal("other constants found the same kernel")
	}
}
