package shaders

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/internal/gputest"
)

func column(x []float64, rows, cols, c int) []float64 {
	out := make([]float64, rows)
	for r := range out {
		out[r] = x[r*cols+c]
	}
	return out
}

func randMatrix(r *rand.Rand, n int) ([]float32, []float64) {
	f := make([]float32, n)
	d := make([]float64, n)
	for i := range f {
		f[i] = float32(r.Float64()*2 - 1)
		d[i] = float64(f[i])
	}
	return f, d
}

// normErr is max|got-want| / max|want|.
func normErr(got []float32, want []float64) float64 {
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
			x32, x64 := randMatrix(r, tc.L*tc.C)
			x, _ := dev.NewTensor("x", engine.F32, tc.L, tc.C)
			y, _ := dev.NewTensor("y", engine.F32, tc.L, tc.C)
			sc, _ := dev.NewTensor("scratch", engine.F32, 1, DCTScratch(tc.L, tc.C, 0))
			x.UploadF32(x32)
			want2 := make([]float64, tc.L*tc.C)
			want3 := make([]float64, tc.L*tc.C)
			for c := 0; c < tc.C; c++ {
				d2 := freqkv.DCT2Ortho(column(x64, tc.L, tc.C, c))
				d3 := freqkv.DCT3Ortho(column(x64, tc.L, tc.C, c))
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
				e := normErr(got, want)
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
