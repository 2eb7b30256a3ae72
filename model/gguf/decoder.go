package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// errShort reports that a read ran past the end of the file.
var errShort = errors.New("unexpected end of file")

// decoder reads little-endian GGUF primitives from a byte slice, checking
// every length against the bytes left before using it.
type decoder struct {
	buf []byte
	off uint64
}

func (d *decoder) left() uint64 { return uint64(len(d.buf)) - d.off }

func (d *decoder) take(n uint64) ([]byte, error) {
	if n > d.left() {
		return nil, fmt.Errorf("%w: need %d bytes at offset %d, %d left", errShort, n, d.off, d.left())
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b, nil
}

func (d *decoder) u8() (uint8, error) {
	b, err := d.take(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (d *decoder) u16() (uint16, error) {
	b, err := d.take(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (d *decoder) boolean() (bool, error) {
	b, err := d.u8()
	if err != nil {
		return false, err
	}
	if b > 1 {
		return false, fmt.Errorf("invalid bool byte %d", b)
	}
	return b == 1, nil
}

// str reads a length-prefixed string, copying it out of the buffer so that
// it outlives a memory mapping.
func (d *decoder) str() (string, error) {
	n, err := d.u64()
	if err != nil {
		return "", err
	}
	if n > d.left() {
		return "", fmt.Errorf("%w: string of %d bytes at offset %d, %d left", errShort, n, d.off, d.left())
	}
	b, _ := d.take(n)
	return string(b), nil
}

// maxArrayDepth bounds nesting of arrays of arrays, which the format allows
// without limit but no model uses beyond one level.
const maxArrayDepth = 8

// value reads one value of type t.
func (d *decoder) value(t ValueType, depth int) (any, error) {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		v, err := d.u8()
		return int8(v), err
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		v, err := d.u16()
		return int16(v), err
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		v, err := d.u32()
		return int32(v), err
	case TypeFloat32:
		v, err := d.u32()
		return math.Float32frombits(v), err
	case TypeBool:
		return d.boolean()
	case TypeString:
		return d.str()
	case TypeArray:
		return d.array(depth + 1)
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		v, err := d.u64()
		return int64(v), err
	case TypeFloat64:
		v, err := d.u64()
		return math.Float64frombits(v), err
	}
	return nil, fmt.Errorf("unknown value type %d", uint32(t))
}

// array reads an array's element type and count, then its elements into a
// slice of the element's Go type ([]any for arrays of arrays).
func (d *decoder) array(depth int) (any, error) {
	if depth > maxArrayDepth {
		return nil, fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
	}
	et, err := d.u32()
	if err != nil {
		return nil, err
	}
	elem := ValueType(et)
	size := elem.minEncodedSize()
	if size == 0 {
		return nil, fmt.Errorf("array of unknown value type %d", et)
	}
	count, err := d.u64()
	if err != nil {
		return nil, err
	}
	// Every element takes at least size bytes, so a count the file cannot
	// hold is rejected before allocating for it.
	if count > d.left()/size {
		return nil, fmt.Errorf("%w: array of %d %v elements at offset %d, %d bytes left", errShort, count, elem, d.off, d.left())
	}
	switch elem {
	case TypeUint8:
		return fixed(d, count, 1, func(b []byte) uint8 { return b[0] }), nil
	case TypeInt8:
		return fixed(d, count, 1, func(b []byte) int8 { return int8(b[0]) }), nil
	case TypeUint16:
		return fixed(d, count, 2, binary.LittleEndian.Uint16), nil
	case TypeInt16:
		return fixed(d, count, 2, func(b []byte) int16 { return int16(binary.LittleEndian.Uint16(b)) }), nil
	case TypeUint32:
		return fixed(d, count, 4, binary.LittleEndian.Uint32), nil
	case TypeInt32:
		return fixed(d, count, 4, func(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) }), nil
	case TypeFloat32:
		return fixed(d, count, 4, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }), nil
	case TypeUint64:
		return fixed(d, count, 8, binary.LittleEndian.Uint64), nil
	case TypeInt64:
		return fixed(d, count, 8, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) }), nil
	case TypeFloat64:
		return fixed(d, count, 8, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }), nil
	case TypeBool:
		return elements(d, count, (*decoder).boolean)
	case TypeString:
		return elements(d, count, (*decoder).str)
	default: // TypeArray
		return elements(d, count, func(d *decoder) (any, error) { return d.array(depth + 1) })
	}
}

// fixed decodes count fixed-size elements; the caller has checked that they
// fit in what is left.
func fixed[T any](d *decoder, count, size uint64, conv func([]byte) T) []T {
	b, _ := d.take(count * size)
	out := make([]T, count)
	for i := range out {
		out[i] = conv(b[uint64(i)*size:])
	}
	return out
}

// elements decodes count variable-size elements.
func elements[T any](d *decoder, count uint64, read func(*decoder) (T, error)) ([]T, error) {
	out := make([]T, count)
	for i := range out {
		v, err := read(d)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}
