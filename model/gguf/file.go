// Package gguf reads and writes GGUF model files (versions 2 and 3).
//
// Reading checks every length, count, dimension and offset against the file
// before using it, so a corrupt or hostile file yields an error naming the
// key or tensor at fault, never a panic or an allocation larger than the
// file warrants. Tensor data is not copied: Open maps the file into memory
// and TensorData returns slices of that mapping.
//
// Metadata values are returned as Go values, one Go type per GGUF type:
// uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32,
// float64, bool and string. An array is a slice of its element's Go type
// ([]uint32, []string, ...); an array of arrays is []any holding such
// slices. Returned slices are shared with the File: do not modify them.
//
// A File is immutable once parsed and may be read from several goroutines;
// Close must not race with readers of tensor data.
package gguf

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/freqkv/freqkv/model/ggml"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the alignment of tensor data when the file does not
// set general.alignment.
const DefaultAlignment = 32

// AlignmentKey is the metadata key that overrides DefaultAlignment.
const AlignmentKey = "general.alignment"

// MaxDims is the most dimensions a tensor may have (GGML_MAX_DIMS).
const MaxDims = 4

// File is a parsed GGUF file.
type File struct {
	Version    uint32
	Alignment  uint64
	DataOffset uint64 // where the tensor data section starts in the file
	Tensors    []TensorInfo

	keys    []string
	values  map[string]any
	tensors map[string]int
	data    []byte       // the whole file; nil once closed
	release func() error // unmaps the file, if it was mapped
	// replaced holds, by name, the data of tensors that WithTensors put in memory.
	replaced map[string][]byte
}

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name string
	// Dims in GGUF order: Dims[0] is the contiguous row length, so a matrix
	// with n rows of k elements has Dims {k, n}.
	Dims   []uint64
	Type   ggml.Type
	Offset uint64 // relative to the data section
}

// Elements returns the number of elements, the product of the dimensions.
// For a TensorInfo from a parsed File it does not overflow.
func (t *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Bytes returns the size of the tensor's data.
func (t *TensorInfo) Bytes() uint64 {
	bs := uint64(t.Type.BlockSize())
	if bs == 0 {
		return 0
	}
	return t.Elements() / bs * uint64(t.Type.BlockBytes())
}

// Parse reads a GGUF file held in data. The File refers to data for tensor
// contents, so data must stay unchanged while the File is used.
func Parse(data []byte) (*File, error) {
	f := &File{
		data:    data,
		values:  make(map[string]any),
		tensors: make(map[string]int),
	}
	d := &decoder{buf: data}
	if err := f.read(d); err != nil {
		return nil, err
	}
	return f, nil
}

// read decodes the header, metadata and tensor infos, and places the tensors.
func (f *File) read(d *decoder) error {
	magic, err := d.take(4)
	if err != nil || string(magic) != Magic {
		return fmt.Errorf("gguf: not a GGUF file (magic %q)", magic)
	}
	if f.Version, err = d.u32(); err != nil {
		return fmt.Errorf("gguf: version: %w", err)
	}
	switch {
	case f.Version == 2 || f.Version == 3:
	case f.Version != 0 && f.Version&0xffff == 0 && bits.ReverseBytes32(f.Version) <= 3:
		// A small version read with the wrong byte order.
		return fmt.Errorf("gguf: big-endian files are not supported (version %d)", bits.ReverseBytes32(f.Version))
	default:
		return fmt.Errorf("gguf: unsupported version %d (want 2 or 3)", f.Version)
	}
	nTensors, err := d.u64()
	if err != nil {
		return fmt.Errorf("gguf: tensor count: %w", err)
	}
	nKV, err := d.u64()
	if err != nil {
		return fmt.Errorf("gguf: metadata count: %w", err)
	}
	if err := f.readMetadata(d, nKV); err != nil {
		return err
	}
	if err := f.readAlignment(); err != nil {
		return err
	}
	if err := f.readTensorInfos(d, nTensors); err != nil {
		return err
	}
	return f.placeTensors(d.off)
}

// Smallest encodings of one metadata pair (key length, type, a 1-byte
// value) and one tensor info (name length, n_dims, one dim, type, offset):
// they bound the counts in the header by the file size.
const (
	minKVBytes     = 8 + 4 + 1
	minTensorBytes = 8 + 4 + 8 + 4 + 8
)

func (f *File) readMetadata(d *decoder, n uint64) error {
	if n > d.left()/minKVBytes {
		return fmt.Errorf("gguf: %d metadata pairs cannot fit in the %d bytes left", n, d.left())
	}
	f.keys = make([]string, 0, n)
	for i := range n {
		key, err := d.str()
		if err != nil {
			return fmt.Errorf("gguf: metadata pair %d: key: %w", i, err)
		}
		if _, dup := f.values[key]; dup {
			return fmt.Errorf("gguf: key %q: duplicate", key)
		}
		t, err := d.u32()
		if err != nil {
			return fmt.Errorf("gguf: key %q: type: %w", key, err)
		}
		v, err := d.value(ValueType(t), 0)
		if err != nil {
			return fmt.Errorf("gguf: key %q: %w", key, err)
		}
		f.keys = append(f.keys, key)
		f.values[key] = v
	}
	return nil
}

func (f *File) readAlignment() error {
	f.Alignment = DefaultAlignment
	v, ok := f.values[AlignmentKey]
	if !ok {
		return nil
	}
	a, ok := v.(uint32)
	if !ok {
		return fmt.Errorf("gguf: key %q: type %T, want uint32", AlignmentKey, v)
	}
	if a == 0 || a&(a-1) != 0 {
		return fmt.Errorf("gguf: key %q: %d is not a power of two", AlignmentKey, a)
	}
	f.Alignment = uint64(a)
	return nil
}

func (f *File) readTensorInfos(d *decoder, n uint64) error {
	if n > d.left()/minTensorBytes {
		return fmt.Errorf("gguf: %d tensor infos cannot fit in the %d bytes left", n, d.left())
	}
	f.Tensors = make([]TensorInfo, n)
	for i := range f.Tensors {
		t := &f.Tensors[i]
		var err error
		if t.Name, err = d.str(); err != nil {
			return fmt.Errorf("gguf: tensor %d: name: %w", i, err)
		}
		if err := readTensorInfo(d, t); err != nil {
			return fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		if _, dup := f.tensors[t.Name]; dup {
			return fmt.Errorf("gguf: tensor %q: duplicate name", t.Name)
		}
		f.tensors[t.Name] = i
	}
	return nil
}

func readTensorInfo(d *decoder, t *TensorInfo) error {
	nDims, err := d.u32()
	if err != nil {
		return fmt.Errorf("n_dims: %w", err)
	}
	if nDims == 0 || nDims > MaxDims {
		return fmt.Errorf("n_dims %d, want 1 to %d", nDims, MaxDims)
	}
	t.Dims = make([]uint64, nDims)
	for j := range t.Dims {
		if t.Dims[j], err = d.u64(); err != nil {
			return fmt.Errorf("dimension %d: %w", j, err)
		}
	}
	typ, err := d.u32()
	if err != nil {
		return fmt.Errorf("type: %w", err)
	}
	t.Type = ggml.Type(typ)
	if t.Offset, err = d.u64(); err != nil {
		return fmt.Errorf("offset: %w", err)
	}
	return checkShape(t.Dims, t.Type)
}

// checkShape verifies that a tensor of these dimensions and type has a size
// that can be computed without overflow.
func checkShape(dims []uint64, typ ggml.Type) error {
	if !typ.Known() {
		return fmt.Errorf("unknown tensor type %v", typ)
	}
	if len(dims) == 0 || len(dims) > MaxDims {
		return fmt.Errorf("%d dimensions, want 1 to %d", len(dims), MaxDims)
	}
	n := uint64(1)
	for _, dim := range dims {
		hi, lo := bits.Mul64(n, dim)
		if hi != 0 || lo > math.MaxInt64 {
			return fmt.Errorf("dimensions %v: element count overflows", dims)
		}
		n = lo
	}
	bs := uint64(typ.BlockSize())
	if dims[0]%bs != 0 {
		return fmt.Errorf("row length %d is not a multiple of the %v block size %d", dims[0], typ, bs)
	}
	if hi, lo := bits.Mul64(n/bs, uint64(typ.BlockBytes())); hi != 0 || lo > math.MaxInt64 {
		return fmt.Errorf("dimensions %v: byte size overflows", dims)
	}
	return nil
}

// placeTensors fixes the data section after the tensor infos (which end at
// infoEnd) and checks that every tensor is aligned and inside the file.
func (f *File) placeTensors(infoEnd uint64) error {
	f.DataOffset = alignUp(infoEnd, f.Alignment)
	size := uint64(len(f.data))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Offset%f.Alignment != 0 {
			return fmt.Errorf("gguf: tensor %q: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		n := t.Bytes()
		if n == 0 {
			continue
		}
		if f.DataOffset > size || t.Offset > size-f.DataOffset || n > size-f.DataOffset-t.Offset {
			return fmt.Errorf("gguf: tensor %q: %d bytes at data offset %d run past the end of the file (%d bytes, data from %d)",
				t.Name, n, t.Offset, size, f.DataOffset)
		}
	}
	return nil
}

// alignUp rounds n up to a multiple of a (a power of two); it saturates
// rather than wrapping, which leaves the result past any real file.
func alignUp(n, a uint64) uint64 {
	if n > math.MaxUint64-(a-1) {
		return math.MaxUint64
	}
	return (n + a - 1) &^ (a - 1)
}

// ErrClosed is returned for tensor data requested after Close.
var ErrClosed = errors.New("gguf: file is closed")

// Close releases the file's memory mapping, if any. Metadata stays readable;
// tensor data slices obtained before must no longer be used.
func (f *File) Close() error {
	f.data = nil
	if f.release == nil {
		return nil
	}
	release := f.release
	f.release = nil
	if err := release(); err != nil {
		return fmt.Errorf("gguf: unmapping: %w", err)
	}
	return nil
}

// Tensor returns the info of the tensor called name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tensors[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// TensorData returns the bytes of t, a slice of the file (valid until Close).
func (f *File) TensorData(t *TensorInfo) ([]byte, error) {
	if f.data == nil {
		return nil, ErrClosed
	}
	if err := checkShape(t.Dims, t.Type); err != nil {
		return nil, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
	}
	if data, ok := f.replaced[t.Name]; ok {
		return data, nil
	}
	start, n, size := f.DataOffset, t.Bytes(), uint64(len(f.data))
	if n == 0 {
		return []byte{}, nil
	}
	if start > size || t.Offset > size-start || n > size-start-t.Offset {
		return nil, fmt.Errorf("gguf: tensor %q: %d bytes at data offset %d lie outside the file", t.Name, n, t.Offset)
	}
	start += t.Offset
	return f.data[start : start+n : start+n], nil
}
