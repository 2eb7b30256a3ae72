package testvectors

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/shaders"
)

// Runner executes one vector's kernel on the device and returns its outputs.
type Runner func(r *Run, v *Vector) (map[string][]float64, error)

// runners maps a kernel family to the code that launches it; each
// run_FAMILY.go registers its own in init.
var runners = map[string]Runner{}

func register(kernel string, fn Runner) { runners[kernel] = fn }

// Kernels lists the kernel families that have runners.
func Kernels() []string {
	out := make([]string, 0, len(runners))
	for k := range runners {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Run holds the device state for running vectors.
type Run struct {
	Dev *engine.Device
	Ops *shaders.Ops
	tmp []interface{ Release() }
}

// NewRun prepares to run vectors on dev.
func NewRun(dev *engine.Device) *Run { return &Run{Dev: dev, Ops: shaders.New(dev)} }

// Release frees what the launchers keep on the device.
func (r *Run) Release() { r.Ops.Release() }

// Execute runs one vector and judges it.
func (r *Run) Execute(v *Vector) Result {
	fn, ok := runners[v.Kernel]
	if !ok {
		return Result{Vector: v, Err: fmt.Errorf("no runner for kernel %q (known: %v)", v.Kernel, Kernels())}
	}
	got, err := fn(r, v)
	for _, t := range r.tmp {
		t.Release()
	}
	r.tmp = r.tmp[:0]
	if err != nil {
		return Result{Vector: v, Err: err}
	}
	return Judge(v, got)
}

// Input uploads a named input as a [rows, cols] tensor (cols: the last
// dimension, rows: the product of the rest).
func (r *Run) Input(v *Vector, name string) (*engine.Tensor, error) {
	a, ok := v.Inputs[name]
	if !ok {
		return nil, fmt.Errorf("vector %s: missing input %q", v.Name, name)
	}
	dt, err := a.EngineDType()
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", name, err)
	}
	rows, cols := split(a.Shape)
	t, err := r.Dev.NewTensor(name, dt, rows, cols)
	if err != nil {
		return nil, err
	}
	r.tmp = append(r.tmp, t)
	b, err := a.Bytes()
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", name, err)
	}
	return t, t.Upload(b)
}

// Weight uploads a named input as a weight in parts of chunkRows rows
// (0: as few parts as the device allows), and checks that chunking split it.
func (r *Run) Weight(v *Vector, name string, chunkRows int) (*engine.Weight, error) {
	a, ok := v.Inputs[name]
	if !ok {
		return nil, fmt.Errorf("vector %s: missing input %q", v.Name, name)
	}
	dt, err := a.EngineDType()
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", name, err)
	}
	rows, cols := split(a.Shape)
	b, err := a.Bytes()
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", name, err)
	}
	var maxPart uint64
	if chunkRows > 0 {
		rb, err := dt.RowBytes(cols)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", name, err)
		}
		maxPart = uint64(chunkRows) * rb
	}
	w, err := r.Dev.UploadWeight(name, dt, rows, cols, b, maxPart)
	if err != nil {
		return nil, err
	}
	r.tmp = append(r.tmp, w)
	if want := (rows + chunkRows - 1) / max(chunkRows, 1); chunkRows > 0 && len(w.Parts) != want {
		return nil, fmt.Errorf("vector %s: chunk_rows %d split %d rows into %d parts, want %d", v.Name, chunkRows, rows, len(w.Parts), want)
	}
	return w, nil
}

// Output allocates a tensor for a named output, poisoned with NaN (or
// 0xFFFFFFFF for integers) so an element the kernel leaves unwritten fails.
func (r *Run) Output(v *Vector, name string, dt engine.DType) (*engine.Tensor, error) {
	a, ok := v.Outputs[name]
	if !ok {
		return nil, fmt.Errorf("vector %s: missing output %q", v.Name, name)
	}
	rows, cols := split(a.Shape)
	t, err := r.Dev.NewTensor(name, dt, rows, cols)
	if err != nil {
		return nil, err
	}
	r.tmp = append(r.tmp, t)
	return t, Poison(t)
}

// Poison fills a tensor with NaN (f32/f16) or all-ones words.
func Poison(t *engine.Tensor) error {
	words := (t.Bytes() + 3) / 4
	b := make([]byte, 4*words)
	for i := uint64(0); i < words; i++ {
		w := uint32(0x7fc00000) // f32 NaN
		switch t.DType {
		case engine.F16:
			w = 0x7e007e00
		case engine.U32:
			w = 0xffffffff
		}
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return t.Buf.Write(t.Offset, b[:t.Bytes()+(4-t.Bytes()%4)%4])
}

// Read reads a tensor back as float64 values.
func (r *Run) Read(t *engine.Tensor) ([]float64, error) {
	b, err := t.Buf.Read(t.Offset, t.Bytes())
	if err != nil {
		return nil, err
	}
	n := t.Rows * t.Cols
	out := make([]float64, n)
	if t.DType == engine.Q8_0 || t.DType == engine.Q4_0 {
		// quantised tensors (KV caches) read back through the CPU's ggml decoder
		gt := map[engine.DType]ggml.Type{engine.Q8_0: ggml.Q8_0, engine.Q4_0: ggml.Q4_0}[t.DType]
		f, err := ggml.Dequantize(gt, b, n)
		if err != nil {
			return nil, fmt.Errorf("read %s tensor: %w", t.DType, err)
		}
		for i, x := range f {
			out[i] = float64(x)
		}
		return out, nil
	}
	for i := range out {
		switch t.DType {
		case engine.F32:
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		case engine.F16:
			out[i] = float64(ggml.F16ToF32(binary.LittleEndian.Uint16(b[2*i:])))
		case engine.U32:
			out[i] = float64(binary.LittleEndian.Uint32(b[4*i:]))
		default:
			return nil, fmt.Errorf("cannot read a %s tensor as numbers", t.DType)
		}
	}
	return out, nil
}

// Submit records with fn, submits, waits, and reads the named outputs.
func (r *Run) Submit(fn func(rec *engine.Recorder) error, outs map[string]*engine.Tensor) (map[string][]float64, error) {
	rec := r.Dev.NewRecorder()
	if err := fn(rec); err != nil {
		return nil, err
	}
	if err := rec.SubmitAndWait(); err != nil {
		return nil, err
	}
	got := map[string][]float64{}
	for name, t := range outs {
		v, err := r.Read(t)
		if err != nil {
			return nil, err
		}
		got[name] = v
	}
	return got, nil
}

func split(shape []int) (rows, cols int) {
	if len(shape) == 0 {
		return 1, 1
	}
	rows = 1
	for _, s := range shape[:len(shape)-1] {
		rows *= s
	}
	return rows, shape[len(shape)-1]
}
