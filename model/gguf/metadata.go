package gguf

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrMissing is wrapped by the typed getters when a key is absent.
var ErrMissing = errors.New("missing")

// Keys returns the metadata keys in file order.
func (f *File) Keys() []string { return slices.Clone(f.keys) }

// Value returns the value of key; see the package comment for its Go type.
func (f *File) Value(key string) (any, bool) {
	v, ok := f.values[key]
	return v, ok
}

func (f *File) lookup(key string) (any, error) {
	v, ok := f.values[key]
	if !ok {
		return nil, fmt.Errorf("gguf: key %q: %w", key, ErrMissing)
	}
	return v, nil
}

func wrongType(key string, v any, want string) error {
	return fmt.Errorf("gguf: key %q: type %s, want %s", key, goTypeName(v), want)
}

// goTypeName names a value by its GGUF type ("uint32", "array of string").
func goTypeName(v any) string {
	t, _ := typeOf(v)
	if t != TypeArray {
		return t.String()
	}
	et, _ := elemTypeOf(v)
	return "array of " + et.String()
}

// String returns the string value of key.
func (f *File) String(key string) (string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", wrongType(key, v, "string")
	}
	return s, nil
}

// Uint returns the value of key, which may have any integer type but must
// not be negative.
func (f *File) Uint(key string) (uint64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	n, signed, ok := asInt(v)
	if !ok {
		return 0, wrongType(key, v, "an integer")
	}
	if signed < 0 {
		return 0, fmt.Errorf("gguf: key %q: negative value %d", key, signed)
	}
	return n, nil
}

// asInt widens any integer value. For signed types signed holds the value
// and n its non-negative part (0 when negative).
func asInt(v any) (n uint64, signed int64, ok bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), 0, true
	case uint16:
		return uint64(x), 0, true
	case uint32:
		return uint64(x), 0, true
	case uint64:
		return x, 0, true
	case int8:
		return uint64(max(x, 0)), int64(x), true
	case int16:
		return uint64(max(x, 0)), int64(x), true
	case int32:
		return uint64(max(x, 0)), int64(x), true
	case int64:
		return uint64(max(x, 0)), x, true
	}
	return 0, 0, false
}

// Float returns the value of key, which must be a float32 or float64.
func (f *File) Float(key string) (float64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	}
	return 0, wrongType(key, v, "float32 or float64")
}

// Bool returns the bool value of key.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.lookup(key)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, wrongType(key, v, "bool")
	}
	return b, nil
}

// Strings returns a copy of the array of strings at key.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.([]string)
	if !ok {
		return nil, wrongType(key, v, "array of string")
	}
	return slices.Clone(s), nil
}

// Float32s returns a copy of the array of float32 at key.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.([]float32)
	if !ok {
		return nil, wrongType(key, v, "array of float32")
	}
	return slices.Clone(s), nil
}

// Ints returns the array of any integer type at key, widened to int64.
// uint64 elements above math.MaxInt64 are an error.
func (f *File) Ints(key string) ([]int64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	switch s := v.(type) {
	case []uint8:
		return widen(s), nil
	case []int8:
		return widen(s), nil
	case []uint16:
		return widen(s), nil
	case []int16:
		return widen(s), nil
	case []uint32:
		return widen(s), nil
	case []int32:
		return widen(s), nil
	case []int64:
		return slices.Clone(s), nil
	case []uint64:
		out := make([]int64, len(s))
		for i, x := range s {
			if x > math.MaxInt64 {
				return nil, fmt.Errorf("gguf: key %q: element %d (%d) overflows int64", key, i, x)
			}
			out[i] = int64(x)
		}
		return out, nil
	}
	return nil, wrongType(key, v, "array of integers")
}

func widen[T uint8 | int8 | uint16 | int16 | uint32 | int32](s []T) []int64 {
	out := make([]int64, len(s))
	for i, x := range s {
		out[i] = int64(x)
	}
	return out
}
