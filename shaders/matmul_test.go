package shaders_test

import (
	"math"
	"strings"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/shaders"
)

// Launcher checks of the matrix product and the embedding lookup: bad input is an error
// before anything is recorded.

// TestMatMulErrors checks that the launcher refuses bad shapes and types with
// an error that names the problem, before recording anything.
func TestMatMulErrors(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	tensor := func(dt engine.DType, rows, cols int) *engine.Tensor {
		x, err := dev.NewTensor("t", dt, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(x.Release)
		return x
	}
	w, err := dev.UploadWeight("w", engine.Q8_0, 8, 64, make([]byte, 8*2*34), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Release)
	u32w, err := dev.UploadWeight("ids", engine.U32, 8, 64, make([]byte, 8*64*4), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u32w.Release)
	x, y := tensor(engine.F32, 2, 64), tensor(engine.F32, 2, 8)
	for _, c := range []struct {
		name    string
		x, y    *engine.Tensor
		w       *engine.Weight
		m       int
		opt     shaders.MatMulOptions
		message string
	}{
		{"nil weight", x, y, nil, 1, shaders.MatMulOptions{}, "nil or empty"},
		{"no rows", x, y, w, 0, shaders.MatMulOptions{}, "empty product"},
		{"x too small", x, y, w, 3, shaders.MatMulOptions{}, "the kernel touches 192"},
		{"y too small", x, tensor(engine.F32, 1, 8), w, 2, shaders.MatMulOptions{}, "the kernel touches 16"},
		{"x not f32", tensor(engine.F16, 2, 64), y, w, 1, shaders.MatMulOptions{}, "is f16, want f32"},
		{"x is y", x, x, w, 1, shaders.MatMulOptions{}, "share buffer"},
		{"short bias", x, y, w, 1, shaders.MatMulOptions{Bias: tensor(engine.F32, 1, 7)}, "touches 8"},
		{"bias is y", x, y, w, 1, shaders.MatMulOptions{Bias: y}, "share buffer"},
		{"u32 weight", x, y, u32w, 1, shaders.MatMulOptions{}, "not supported"},
	} {
		rec := dev.NewRecorder()
		err := ops.MatMul(rec, c.x, c.w, c.y, c.m, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.message) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.message)
		}
		if rec.Dispatches != 0 {
			t.Errorf("%s: %d dispatches recorded before the error", c.name, rec.Dispatches)
		}
	}
}

// TestEmbeddingOutOfRange: an id past the table reads nothing and yields a
// row of NaN, whichever part would have held it; in-range rows are exact.
func TestEmbeddingOutOfRange(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	const vocab, dim = 10, 5
	data := make([]float32, vocab*dim)
	for i := range data {
		data[i] = float32(i) + 0.5
	}
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		b := math.Float32bits(v)
		raw[4*i], raw[4*i+1], raw[4*i+2], raw[4*i+3] = byte(b), byte(b>>8), byte(b>>16), byte(b>>24)
	}
	for _, chunk := range []int{0, 4} { // one part; parts of 4 rows (the last holds 2)
		table, err := dev.UploadWeight("table", engine.F32, vocab, dim, raw, uint64(chunk*dim*4))
		if err != nil {
			t.Fatal(err)
		}
		ids := []uint32{3, vocab, 9, 1 << 31, 0}
		idt, _ := dev.NewTensor("ids", engine.U32, 1, len(ids))
		idb := make([]byte, 4*len(ids))
		for i, v := range ids {
			idb[4*i], idb[4*i+1], idb[4*i+2], idb[4*i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		}
		if err := idt.Upload(idb); err != nil {
			t.Fatal(err)
		}
		out, _ := dev.NewTensor("out", engine.F32, len(ids), dim)
		rec := dev.NewRecorder()
		if err := ops.Embedding(rec, idt, table, out, len(ids)); err != nil {
			t.Fatal(err)
		}
		if err := rec.SubmitAndWait(); err != nil {
			t.Fatal(err)
		}
		got, err := out.ReadF32()
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			for c := range dim {
				g := got[i*dim+c]
				if id >= vocab {
					if !math.IsNaN(float64(g)) {
						t.Errorf("chunk %d: id %d col %d = %v, want NaN", chunk, id, c, g)
					}
				} else if want := data[int(id)*dim+c]; g != want {
					t.Errorf("chunk %d: id %d col %d = %v, want %v", chunk, id, c, g, want)
				}
			}
		}
		table.Release()
		idt.Release()
		out.Release()
	}
}

// TestEmbeddingRejects: bad shapes and types are errors, never dispatches.
func TestEmbeddingRejects(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	table, err := dev.UploadWeight("table", engine.F32, 4, 8, make([]byte, 4*4*8), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer table.Release()
	ids, _ := dev.NewTensor("ids", engine.U32, 1, 3)
	idsF, _ := dev.NewTensor("idsf", engine.F32, 1, 3)
	out, _ := dev.NewTensor("out", engine.F32, 3, 8)
	small, _ := dev.NewTensor("small", engine.F32, 2, 8)
	for _, tt := range []*engine.Tensor{ids, idsF, out, small} {
		defer tt.Release()
	}
	cases := []struct {
		name  string
		ids   *engine.Tensor
		table *engine.Weight
		out   *engine.Tensor
		t     int
		want  string
	}{
		{"nil table", ids, nil, out, 3, "nil"},
		{"no tokens", ids, table, out, 0, "empty"},
		{"f32 ids", idsF, table, out, 3, "want u32"},
		{"too few ids", ids, table, out, 4, "touches"},
		{"small out", ids, table, small, 3, "touches"},
		{"ids alias out", &engine.Tensor{Buf: out.Buf, DType: engine.U32, Rows: 1, Cols: 3}, table, out, 3, "share buffer"},
	}
	for _, c := range cases {
		rec := dev.NewRecorder()
		err := ops.Embedding(rec, c.ids, c.table, c.out, c.t)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
		if rec.Dispatches != 0 {
			t.Errorf("%s: recorded %d dispatches", c.name, rec.Dispatches)
		}
	}
}
