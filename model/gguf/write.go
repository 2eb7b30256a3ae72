package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/freqkv/freqkv/model/ggml"
)

// KV is one metadata pair to write. Value must have one of the Go types
// Value returns (see the package comment); a Go int, for one, is rejected
// because its GGUF width would be a guess.
type KV struct {
	Key   string
	Value any
}

// WriteTensor is one tensor to write: its data, already encoded as Type.
type WriteTensor struct {
	Name string
	Dims []uint64 // GGUF order, Dims[0] contiguous
	Type ggml.Type
	Data []byte
}

// Write writes a GGUF version 3 file holding kv and tensors, in that order.
// Tensor data is aligned to general.alignment when kv sets it (as a uint32
// power of two), else to DefaultAlignment.
func Write(w io.Writer, kv []KV, tensors []WriteTensor) error {
	align, err := writeAlignment(kv)
	if err != nil {
		return err
	}
	offsets, err := layoutTensors(tensors, align)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(kv))
	for _, p := range kv {
		if seen[p.Key] {
			return fmt.Errorf("gguf: key %q: duplicate", p.Key)
		}
		seen[p.Key] = true
		if err := checkValue(p.Value, 0); err != nil {
			return fmt.Errorf("gguf: key %q: %w", p.Key, err)
		}
	}

	e := &encoder{w: bufio.NewWriter(w)}
	e.raw([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kv)))
	for _, p := range kv {
		e.str(p.Key)
		t, _ := typeOf(p.Value)
		e.u32(uint32(t))
		e.value(p.Value)
	}
	for i, t := range tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(offsets[i])
	}
	e.pad(align)
	for _, t := range tensors {
		e.raw(t.Data)
		e.pad(align)
	}
	if e.err != nil {
		return fmt.Errorf("gguf: writing: %w", e.err)
	}
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("gguf: writing: %w", err)
	}
	return nil
}

func writeAlignment(kv []KV) (uint64, error) {
	for _, p := range kv {
		if p.Key != AlignmentKey {
			continue
		}
		a, ok := p.Value.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			return 0, fmt.Errorf("gguf: key %q: %v (%T) is not a uint32 power of two", AlignmentKey, p.Value, p.Value)
		}
		return uint64(a), nil
	}
	return DefaultAlignment, nil
}

// layoutTensors checks each tensor and returns its offset in the data
// section, each aligned to align.
func layoutTensors(tensors []WriteTensor, align uint64) ([]uint64, error) {
	offsets := make([]uint64, len(tensors))
	names := make(map[string]bool, len(tensors))
	var off uint64
	for i, t := range tensors {
		if names[t.Name] {
			return nil, fmt.Errorf("gguf: tensor %q: duplicate name", t.Name)
		}
		names[t.Name] = true
		if err := checkShape(t.Dims, t.Type); err != nil {
			return nil, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		info := TensorInfo{Dims: t.Dims, Type: t.Type}
		if n := info.Bytes(); uint64(len(t.Data)) != n {
			return nil, fmt.Errorf("gguf: tensor %q: %v %v needs %d bytes, got %d", t.Name, t.Type, t.Dims, n, len(t.Data))
		}
		offsets[i] = off
		off = alignUp(off+uint64(len(t.Data)), align)
	}
	return offsets, nil
}

// checkValue verifies that v can be written: a supported Go type, arrays of
// arrays holding only arrays, nested no deeper than a reader accepts.
func checkValue(v any, depth int) error {
	t, ok := typeOf(v)
	if !ok {
		return fmt.Errorf("unsupported Go type %T", v)
	}
	if t != TypeArray {
		return nil
	}
	if depth+1 > maxArrayDepth {
		return fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
	}
	if nested, ok := v.([]any); ok {
		for i, x := range nested {
			if xt, _ := typeOf(x); xt != TypeArray {
				return fmt.Errorf("element %d of an array of arrays is %T, not an array", i, x)
			}
			if err := checkValue(x, depth+1); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
	}
	return nil
}

// encoder writes little-endian GGUF primitives, remembering the first error.
type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
	buf [8]byte
}

func (e *encoder) raw(b []byte) {
	if e.err != nil {
		return
	}
	var n int
	n, e.err = e.w.Write(b)
	e.n += uint64(n)
}

func (e *encoder) u8(v uint8) { e.raw([]byte{v}) }

func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.raw(e.buf[:2])
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.raw(e.buf[:4])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.raw(e.buf[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		var n int
		n, e.err = e.w.WriteString(s)
		e.n += uint64(n)
	}
}

func (e *encoder) boolean(b bool) {
	if b {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) pad(align uint64) {
	for e.n%align != 0 && e.err == nil {
		e.u8(0)
	}
}

// value writes v's encoding without its type tag; checkValue has accepted v.
func (e *encoder) value(v any) {
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		e.boolean(x)
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case []uint8:
		e.array(TypeUint8, len(x))
		e.raw(x)
	case []int8:
		writeElems(e, TypeInt8, x, func(v int8) { e.u8(uint8(v)) })
	case []uint16:
		writeElems(e, TypeUint16, x, e.u16)
	case []int16:
		writeElems(e, TypeInt16, x, func(v int16) { e.u16(uint16(v)) })
	case []uint32:
		writeElems(e, TypeUint32, x, e.u32)
	case []int32:
		writeElems(e, TypeInt32, x, func(v int32) { e.u32(uint32(v)) })
	case []float32:
		writeElems(e, TypeFloat32, x, func(v float32) { e.u32(math.Float32bits(v)) })
	case []bool:
		writeElems(e, TypeBool, x, e.boolean)
	case []string:
		writeElems(e, TypeString, x, e.str)
	case []uint64:
		writeElems(e, TypeUint64, x, e.u64)
	case []int64:
		writeElems(e, TypeInt64, x, func(v int64) { e.u64(uint64(v)) })
	case []float64:
		writeElems(e, TypeFloat64, x, func(v float64) { e.u64(math.Float64bits(v)) })
	case []any:
		writeElems(e, TypeArray, x, e.value)
	}
}

func (e *encoder) array(elem ValueType, n int) {
	e.u32(uint32(elem))
	e.u64(uint64(n))
}

func writeElems[T any](e *encoder, elem ValueType, xs []T, put func(T)) {
	e.array(elem, len(xs))
	for _, x := range xs {
		put(x)
	}
}
