package shaders

// Tests of the transforms and the compressor against the float64 reference, on both FFT
// paths, with grids and bindings split as a small device would split them.

import (
	"math"
	"math/rand/v2"
	"testing"

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

func TestDCTAgainstFloat64(t *testing.T) { dctAgainstFloat64(t, 0) }

// dctAgainstFloat64 checks DCT2 and DCT3 on both FFT paths; maxGroups > 0 lowers the
// workgroups per dispatch dimension.
func dctAgainstFloat64(t *testing.T, maxGroups int) {
	dev := gputest.Device(t)
	r := rand.New(rand.NewPCG(3, 4))
	for _, blue := range []bool{false, true} {
		o := New(dev)
		defer o.Release()
		o.knobs = dctKnobs{forceBluestein: blue, maxGroups: maxGroups}
		for _, tc := range []struct{ L, C int }{{1, 1}, {2, 3}, {3, 1}, {5, 8}, {8, 5}, {12, 4}, {37, 2}, {100, 6}, {1000, 1}, {4092, 2}, {4096, 4}} {
			x32, x64 := dctRandMatrix(r, tc.L*tc.C)
			x, _ := dev.NewTensor("x", engine.F32, tc.L, tc.C)
			y, _ := dev.NewTensor("y", engine.F32, tc.L, tc.C)
			sc, _ := dev.NewTensor("scratch", engine.F32, 1, o.knobs.dctScratch(tc.L, tc.C, 0))
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
	t.Run("dct", func(t *testing.T) { dctAgainstFloat64(t, 2) })
	t.Run("compress", func(t *testing.T) { compressInPlace(t, 2, true) })
}

func TestCompressInPlace(t *testing.T) { compressInPlace(t, 0, false) }

// compressInPlace compresses caches of several shapes and types in place and compares
// them with the float64 reference; maxGroups > 0 lowers the workgroups per dispatch
// dimension, splitBindings binds each cache as several ranges of about 1.5 matrices.
func compressInPlace(t *testing.T, maxGroups int, splitBindings bool) {
	dev := gputest.Device(t)
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
		o := New(dev)
		o.knobs = dctKnobs{forceBluestein: tc.blue, maxGroups: maxGroups}
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
		sc, _ := dev.NewTensor("scratch", engine.F32, 1, o.knobs.compressScratch(p, tc.chans))
		rec := dev.NewRecorder()
		if splitBindings {
			o.knobs.bindingLimit = uint64(3*p.BatchStride*p.Channels*elemBytes(tc.dt)/2 + 256)
			gs, err := o.groups(cache, p.Batches, p.BatchStride, p.Sink+p.Span+p.Recent)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d matrices bound as %d ranges", p.Batches, len(gs))
		}
		err = o.Compress(rec, cache, sc, p)
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
		o.Release()
	}
}

// The transforms' tables belong to the Ops: Release returns the device memory they took,
// and the Ops uploads them again when used after it.
func TestOpsReleaseFreesTables(t *testing.T) {
	dev := gputest.Device(t)
	o := New(dev)
	p := CompressParams{Sink: 1, Span: 37, Kept: 11, Recent: 2, Channels: 4, Batches: 1, BatchStride: 40}
	cache, err := dev.NewTensor("cache", engine.F32, p.BatchStride, p.Channels)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Release()
	sc, err := dev.NewTensor("scratch", engine.F32, 1, CompressScratch(p, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Release()
	before := dev.AllocatedBytes()
	for range 2 {
		if err := o.PrepareCompress(cache, sc, p); err != nil {
			t.Fatal(err)
		}
		if dev.AllocatedBytes() <= before {
			t.Fatalf("no tables allocated: %d bytes before, %d after", before, dev.AllocatedBytes())
		}
		o.Release()
		if got := dev.AllocatedBytes(); got != before {
			t.Fatalf("after Release: %d bytes allocated, want %d", got, before)
		}
	}
}
