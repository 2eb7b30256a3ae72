package shaders_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/shaders"
)

func f32Tensor(t testing.TB, dev *engine.Device, label string, dt engine.DType, rows, cols int, v []float32) *engine.Tensor {
	t.Helper()
	x, err := dev.NewTensor(label, dt, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Release)
	if v != nil {
		if dt == engine.U32 {
			b := make([]byte, 4*len(v))
			for i, f := range v {
				binary.LittleEndian.PutUint32(b[4*i:], uint32(f))
			}
			err = x.Upload(b)
		} else {
			err = x.UploadF32(v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return x
}

func randF32(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return v
}

// TestAttentionTrainMatchesInference: the training attention over a prefix
// of P rows, with queries and keys rotated by Rope at positions P+t and j,
// gives what the inference kernel gives for a cache of Rows = P holding the
// same keys before RoPE: the two paths agree on positions and visibility.
func TestAttentionTrainMatchesInference(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	for _, c := range []struct {
		T, P, H, KVH, D, RD int
		neox                bool
	}{{5, 7, 4, 2, 16, 16, false}, {3, 4, 6, 3, 10, 6, true}, {9, 0, 2, 1, 32, 32, false}} {
		r := rand.New(rand.NewPCG(uint64(c.T), uint64(c.P)))
		rows := c.P + c.T
		width, kvWidth := c.H*c.D, c.KVH*c.D
		scale := float32(1 / math.Sqrt(float64(c.D)))
		q := f32Tensor(t, dev, "q", engine.F32, c.T, width, randF32(r, c.T*width))
		k := f32Tensor(t, dev, "k", engine.F32, rows, kvWidth, randF32(r, rows*kvWidth))
		v := f32Tensor(t, dev, "v", engine.F32, rows, kvWidth, randF32(r, rows*kvWidth))
		table := f32Tensor(t, dev, "rope", engine.F32, rows, c.RD, shaders.RopeTable(rows, c.RD, 10000, 1))
		ap := shaders.AttentionParams{T: c.T, Heads: c.H, KVHeads: c.KVH, HeadDim: c.D, RopeDim: c.RD, NeoX: c.neox, Rows: c.P, Cap: rows, Scale: scale}
		want := f32Tensor(t, dev, "want", engine.F32, c.T, width, nil)
		scratch := f32Tensor(t, dev, "scratch", engine.F32, 1, shaders.AttentionScratch(ap), nil)

		qpos, kpos := make([]float32, c.T), make([]float32, rows)
		for i := range qpos {
			qpos[i] = float32(c.P + i)
		}
		for i := range kpos {
			kpos[i] = float32(i)
		}
		qp := f32Tensor(t, dev, "qpos", engine.U32, 1, c.T, qpos)
		kp := f32Tensor(t, dev, "kpos", engine.U32, 1, rows, kpos)
		qr := f32Tensor(t, dev, "qr", engine.F32, c.T, width, nil)
		kr := f32Tensor(t, dev, "kr", engine.F32, rows, kvWidth, nil)
		got := f32Tensor(t, dev, "got", engine.F32, c.T, width, nil)
		stats := f32Tensor(t, dev, "stats", engine.F32, c.T*c.H, 2, nil)
		rp := shaders.RopeParams{Heads: c.H, HeadDim: c.D, RopeDim: c.RD, Base: 10000, Scale: 1, NeoX: c.neox}
		rec := dev.NewRecorder()
		err := ops.Attention(rec, q, k, v, table, want, scratch, ap)
		if err == nil {
			rp.Rows = c.T
			err = ops.Rope(rec, q, qp, qr, rp)
		}
		if err == nil {
			rp.Rows, rp.Heads = rows, c.KVH
			err = ops.Rope(rec, k, kp, kr, rp)
		}
		if err == nil {
			err = ops.AttentionTrain(rec, qr, kr, v, got, stats, shaders.TrainAttentionParams{T: c.T, P: c.P, Heads: c.H, KVHeads: c.KVH, HeadDim: c.D, Scale: scale})
		}
		if err == nil {
			err = rec.SubmitAndWait()
		}
		if err != nil {
			t.Fatal(err)
		}
		w, _ := want.ReadF32()
		g, _ := got.ReadF32()
		maxDiff := 0.0
		for i := range w {
			maxDiff = max(maxDiff, math.Abs(float64(w[i]-g[i])))
		}
		if !(maxDiff < 2e-6) {
			t.Errorf("%+v: training and inference attention differ by %g", c, maxDiff)
		}
	}
}
