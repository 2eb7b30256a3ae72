package shaders

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/model/ggml"
)

// compressDirect is the FreqKV compression of one channel by its definition, direct
// cosine sums in float64 (no FFT, nothing shared with the table or the shaders):
// y_k = sqrt(m/L) sum_{f<m} a_f(m) cos(pi (2k+1) f / 2m) X_f,
// X_f = a_f(L) sum_j x_j cos(pi (2j+1) f / 2L), a_0(n) = sqrt(1/n), a_f(n) = sqrt(2/n).
func compressDirect(x []float64, m int) []float64 {
	l := len(x)
	a := func(f, n int) float64 {
		if f == 0 {
			return math.Sqrt(1 / float64(n))
		}
		return math.Sqrt(2 / float64(n))
	}
	coef := make([]float64, m)
	for f := range coef {
		for j, v := range x {
			coef[f] += v * math.Cos(math.Pi*float64((2*j+1)*f)/float64(2*l))
		}
		coef[f] *= a(f, l)
	}
	y := make([]float64, m)
	for k := range y {
		for f, c := range coef {
			y[k] += a(f, m) * c * math.Cos(math.Pi*float64((2*k+1)*f)/float64(2*m))
		}
		y[k] *= math.Sqrt(float64(m) / float64(l))
	}
	return y
}

// directTable is SpreadTable from compressDirect's cosine sums for a unit row j:
// C[k, j] = sqrt(m/L) sum_{f<m} a_f(m) cos(pi (2k+1) f / 2m) a_f(L) cos(pi (2j+1) f / 2L),
// at [j*m + k].
func directTable(l, m int) []float32 {
	a := func(f, n int) float64 {
		if f == 0 {
			return math.Sqrt(1 / float64(n))
		}
		return math.Sqrt(2 / float64(n))
	}
	tab := make([]float32, l*m)
	for j := range l {
		for k := range m {
			var c float64
			for f := range m {
				c += a(f, m) * math.Cos(math.Pi*float64((2*k+1)*f)/float64(2*m)) * a(f, l) * math.Cos(math.Pi*float64((2*j+1)*f)/float64(2*l))
			}
			tab[j*m+k] = float32(c * math.Sqrt(float64(m)/float64(l)))
		}
	}
	return tab
}

// TestSpreadCompress accumulates the span in random pieces (after a clear of shares from
// another span), writes out, and compares rows [0, S+m+R) of every matrix with the direct
// float64 compression, the sinks kept and the recent rows moved.
func TestSpreadCompress(t *testing.T) {
	dev := gputest.Device(t)
	o := New(dev)
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		p  CompressParams
		dt engine.DType
		// bulk: one accumulate of half the span and a finish of the rest, both
		// past llvmpipe's loop cap even with the loops over KB unrolled
		bulk bool
	}{
		{CompressParams{Sink: 0, Span: 8, Kept: 4, Recent: 0, Channels: 4, Batches: 1, BatchStride: 8}, engine.F32, false},
		{CompressParams{Sink: 4, Span: 12, Kept: 6, Recent: 3, Channels: 8, Batches: 3, BatchStride: 20}, engine.F32, false},
		{CompressParams{Sink: 4, Span: 12, Kept: 6, Recent: 3, Channels: 8, Batches: 3, BatchStride: 20}, engine.F16, false},
		{CompressParams{Sink: 2, Span: 37, Kept: 11, Recent: 30, Channels: 12, Batches: 2, BatchStride: 71}, engine.F16, false},
		{CompressParams{Sink: 1, Span: 100, Kept: 99, Recent: 5, Channels: 4, Batches: 1, BatchStride: 106}, engine.F32, false},
		{CompressParams{Sink: 4, Span: 300, Kept: 150, Recent: 0, Channels: 64, Batches: 4, BatchStride: 304}, engine.F16, false},
		{CompressParams{Sink: 1, Span: 2*65536 + 200, Kept: 5, Recent: 2, Channels: 4, Batches: 1, BatchStride: 2*65536 + 203}, engine.F32, true},
	} {
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
			err = cache.Upload(b)
		} else {
			err = cache.UploadF32(x32)
		}
		if err != nil {
			t.Fatal(err)
		}
		var tab []float32
		if tc.bulk {
			tab = directTable(p.Span, p.Kept) // SpreadTable takes minutes at this span
		} else if tab, err = SpreadTable(p.Span, p.Kept); err != nil {
			t.Fatal(err)
		}
		table, _ := dev.NewTensor("table", engine.F32, p.Span, p.Kept)
		acc, _ := dev.NewTensor("acc", engine.F32, 1, SpreadAccElems(p))
		if err := table.UploadF32(tab); err != nil {
			t.Fatal(err)
		}
		// Shares of the wrong rows first: the sum restarts at span row 0.
		rec := dev.NewRecorder()
		if err := o.SpreadAccumulate(rec, cache, table, acc, p, 0, p.Batches, 1, p.Span-1); err != nil {
			t.Fatal(err)
		}
		// Each matrix on its own in random pieces up to a random row >= m, as the
		// cache staggers them, then the rest in the finish.
		pieces := 0
		for b := range p.Batches {
			end := p.Kept + r.IntN(p.Span-p.Kept+1)
			if tc.bulk {
				end = p.Span / 2
			}
			for j := 0; j < end; pieces++ {
				n := min(end-j, 1+r.IntN(5))
				if tc.bulk {
					n = end
				}
				if err := o.SpreadAccumulate(rec, cache, table, acc, p, b, 1, j, n); err != nil {
					t.Fatal(err)
				}
				j += n
			}
			if err := o.SpreadFinish(rec, cache, table, acc, p, b, 1, end); err != nil {
				t.Fatal(err)
			}
		}
		if err := o.SpreadMoveRecent(rec, cache, acc, p); err != nil {
			t.Fatal(err)
		}
		if err := o.SpreadFinish(rec, cache, table, acc, p, 0, 1, p.Kept-1); err == nil {
			t.Fatal("finish from a row below m: want an error")
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
		tol := 1e-5
		if tc.dt == engine.F16 {
			tol = 1.0/2048 + 2e-5 // the written rows are rounded to f16
		}
		c := p.Channels
		worst := 0.0
		for b := range p.Batches {
			mat := x64[b*p.BatchStride*c:]
			want := append([]float64(nil), mat[:p.Sink*c]...)
			y := make([]float64, p.Kept*c)
			for ch := range c {
				col := make([]float64, p.Span)
				for j := range col {
					col[j] = mat[(p.Sink+j)*c+ch]
				}
				for k, v := range compressDirect(col, p.Kept) {
					y[k*c+ch] = v
				}
			}
			want = append(want, y...)
			want = append(want, mat[(p.Sink+p.Span)*c:(p.Sink+p.Span+p.Recent)*c]...)
			worst = math.Max(worst, dctNormErr(got[b*p.BatchStride*c:], want))
		}
		if worst > tol {
			t.Errorf("%+v %s: error %.3g > %.3g", p, tc.dt, worst, tol)
		} else {
			t.Logf("%+v %s, %d pieces: error %.3g", p, tc.dt, pieces, worst)
		}
		for _, x := range []*engine.Tensor{cache, table, acc} {
			x.Release()
		}
	}
	if err := New(dev).SpreadAccumulate(dev.NewRecorder(), nil, nil, nil, CompressParams{Span: 4, Kept: 2, Channels: 6, Batches: 1, BatchStride: 4}, 0, 1, 0, 1); err == nil {
		t.Error("6 channels: want an error")
	}
}
