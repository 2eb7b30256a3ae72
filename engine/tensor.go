package engine

import (
	"fmt"

	"github.com/cogentcore/webgpu/wgpu"
)

// DType is the element type of a device tensor. Quantised types hold GGUF's
// raw block bytes, dequantised inside the kernels.
type DType uint8

const (
	F32  DType = iota
	F16        // IEEE half
	Q8_0       // blocks of 32: f16 scale + 32 int8
	Q4_0       // blocks of 32: f16 scale + 16 bytes of 4-bit values
	U32
	Q4_K   // super-blocks of 256 in GGUF's 144-byte layout (see model/ggml)
	Q5_K   // super-blocks of 256 in GGUF's 176-byte layout
	Q6_K   // super-blocks of 256 in GGUF's 210-byte layout
	Q4_1   // blocks of 32: f16 scale, f16 min, 16 bytes of nibbles
	Q5_0   // blocks of 32: f16 scale, u32 of fifth bits, 16 bytes of nibbles
	Q5_1   // blocks of 32: f16 scale, f16 min, u32 of fifth bits, nibbles
	IQ4_NL // blocks of 32: f16 scale, 16 bytes of nibbles indexing a fixed grid
)

var dtypeNames = [...]string{F32: "f32", F16: "f16", Q8_0: "q8_0", Q4_0: "q4_0", U32: "u32", Q4_K: "q4_k", Q5_K: "q5_k", Q6_K: "q6_k",
	Q4_1: "q4_1", Q5_0: "q5_0", Q5_1: "q5_1", IQ4_NL: "iq4_nl"}

func (t DType) String() string {
	if int(t) < len(dtypeNames) {
		return dtypeNames[t]
	}
	return fmt.Sprintf("dtype(%d)", t)
}

// BlockSize is the number of elements per block (1 for plain types).
func (t DType) BlockSize() int {
	switch t {
	case Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL:
		return 32
	case Q4_K, Q5_K, Q6_K:
		return 256
	}
	return 1
}

// RowBytes is the byte length of a row of cols elements.
func (t DType) RowBytes(cols int) (uint64, error) {
	if cols%t.BlockSize() != 0 {
		return 0, fmt.Errorf("%s rows need a multiple of %d elements, got %d", t, t.BlockSize(), cols)
	}
	c := uint64(cols)
	switch t {
	case F32, U32:
		return 4 * c, nil
	case F16:
		return 2 * c, nil
	case Q8_0:
		return c / 32 * 34, nil
	case Q4_0:
		return c / 32 * 18, nil
	case Q4_1:
		return c / 32 * 20, nil
	case Q5_0:
		return c / 32 * 22, nil
	case Q5_1:
		return c / 32 * 24, nil
	case IQ4_NL:
		return c / 32 * 18, nil
	case Q4_K:
		return c / 256 * 144, nil
	case Q5_K:
		return c / 256 * 176, nil
	case Q6_K:
		return c / 256 * 210, nil
	}
	return 0, fmt.Errorf("unknown dtype %d", t)
}

// Tensor is a row-major [Rows, Cols] array in one buffer at Offset.
type Tensor struct {
	Buf    *Buffer
	Offset uint64
	DType  DType
	Rows   int
	Cols   int
}

// NewTensor allocates a [rows, cols] tensor in its own buffer.
func (d *Device) NewTensor(label string, t DType, rows, cols int) (*Tensor, error) {
	rb, err := t.RowBytes(cols)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", label, err)
	}
	size := rb * uint64(rows)
	if size > d.MaxBinding() {
		return nil, fmt.Errorf("tensor %q [%d,%d] %s is %d bytes, over the device's storage binding limit %d; use a Weight (chunked) or a smaller size", label, rows, cols, t, size, d.MaxBinding())
	}
	b, err := d.NewBuffer(label, size)
	if err != nil {
		return nil, err
	}
	return &Tensor{Buf: b, DType: t, Rows: rows, Cols: cols}, nil
}

// Bytes is the tensor's size in bytes.
func (t *Tensor) Bytes() uint64 {
	rb, _ := t.DType.RowBytes(t.Cols)
	return rb * uint64(t.Rows)
}

// Binding covers exactly the tensor's bytes (rounded up to a word).
func (t *Tensor) Binding() Binding {
	return Binding{Buf: t.Buf, Offset: t.Offset, Size: (t.Bytes() + 3) &^ 3}
}

// Upload writes raw bytes (the tensor's exact size).
func (t *Tensor) Upload(data []byte) error {
	if uint64(len(data)) != t.Bytes() {
		return fmt.Errorf("upload %q: got %d bytes, tensor [%d,%d] %s holds %d", t.Buf.Label, len(data), t.Rows, t.Cols, t.DType, t.Bytes())
	}
	return t.Buf.Write(t.Offset, data)
}

// UploadF32 writes float32 values into an f32 tensor.
func (t *Tensor) UploadF32(v []float32) error {
	if t.DType != F32 {
		return fmt.Errorf("upload %q: UploadF32 on a %s tensor", t.Buf.Label, t.DType)
	}
	return t.Upload(wgpu.ToBytes(v))
}

// ReadF32 reads an f32 tensor back.
func (t *Tensor) ReadF32() ([]float32, error) {
	if t.DType != F32 {
		return nil, fmt.Errorf("read %q: ReadF32 on a %s tensor", t.Buf.Label, t.DType)
	}
	b, err := t.Buf.Read(t.Offset, t.Bytes())
	if err != nil {
		return nil, err
	}
	return wgpu.FromBytes[float32](b), nil
}

// Release frees the tensor's buffer.
func (t *Tensor) Release() { t.Buf.Release() }

// Weight is a [Rows, Cols] matrix split by rows into parts that each fit one
// storage binding, so tensors over maxStorageBufferBindingSize still work.
type Weight struct {
	Label string
	DType DType
	Rows  int
	Cols  int
	Parts []*Tensor // Parts[i] holds rows [Row0(i), Row0(i)+Parts[i].Rows)
	row0  []int
}

// Row0 is the first row of part i.
func (w *Weight) Row0(i int) int { return w.row0[i] }

// Bytes is the weight's total size.
func (w *Weight) Bytes() uint64 {
	var n uint64
	for _, p := range w.Parts {
		n += p.Bytes()
	}
	return n
}

// Release frees every part.
func (w *Weight) Release() {
	for _, p := range w.Parts {
		p.Release()
	}
}

// UploadWeight copies a row-major matrix to the device, in parts of at most
// maxPart bytes (0: the device's binding limit).
func (d *Device) UploadWeight(label string, t DType, rows, cols int, data []byte, maxPart uint64) (*Weight, error) {
	rb, err := t.RowBytes(cols)
	if err != nil {
		return nil, fmt.Errorf("weight %q: %w", label, err)
	}
	if uint64(len(data)) != rb*uint64(rows) {
		return nil, fmt.Errorf("weight %q [%d,%d] %s: got %d bytes, want %d", label, rows, cols, t, len(data), rb*uint64(rows))
	}
	if maxPart == 0 || maxPart > d.MaxBinding() {
		maxPart = d.MaxBinding()
	}
	perPart := int(maxPart / rb)
	if perPart < 1 {
		return nil, fmt.Errorf("weight %q: one row of %d bytes exceeds the binding limit %d", label, rb, maxPart)
	}
	w := &Weight{Label: label, DType: t, Rows: rows, Cols: cols}
	for r0 := 0; r0 < rows; r0 += perPart {
		n := min(perPart, rows-r0)
		p, err := d.NewTensor(fmt.Sprintf("%s[%d:%d]", label, r0, r0+n), t, n, cols)
		if err != nil {
			w.Release()
			return nil, err
		}
		if err := p.Upload(data[uint64(r0)*rb : uint64(r0+n)*rb]); err != nil {
			w.Release()
			return nil, err
		}
		w.Parts = append(w.Parts, p)
		w.row0 = append(w.row0, r0)
	}
	return w, nil
}

// Grid spreads n invocations of workgroups of size wg over x and y, since
// one dimension holds at most 65535 workgroups. Kernels rebuild the linear
// index as (wid.y * num_workgroups.x + wid.x) * wg + lid.x and bound-check it.
func Grid(n, wg int) [3]uint32 {
	groups := (n + wg - 1) / wg
	if groups <= 65535 {
		return [3]uint32{uint32(groups), 1, 1}
	}
	y := (groups + 65534) / 65535
	x := (groups + y - 1) / y
	return [3]uint32{uint32(x), uint32(y), 1}
}
