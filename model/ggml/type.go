// Package ggml describes GGML tensor element types: their ids as stored in
// GGUF files, their block layouts, and conversions between them and float32.
package ggml

import (
	"fmt"
	"math"
)

// Type is a GGML tensor element type id, as stored in GGUF tensor infos.
type Type uint32

// Type ids from ggml.h. Gaps are ids that ggml retired; they are unknown here.
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
)

// QK is the number of elements in a Q4_0, Q4_1 and Q8_0 block.
const QK = 32

// QKK is the number of elements in a K-quant super-block.
const QKK = 256

type layout struct {
	name       string
	blockSize  int // elements per block
	blockBytes int // bytes per block
}

// layouts holds the block layout of every type ggml knows, so that files
// with any of them can be sized, even where this package cannot convert them.
var layouts = map[Type]layout{
	F32:     {"F32", 1, 4},
	F16:     {"F16", 1, 2},
	Q4_0:    {"Q4_0", QK, 2 + QK/2},
	Q4_1:    {"Q4_1", QK, 4 + QK/2},
	Q5_0:    {"Q5_0", 32, 2 + 4 + 16},
	Q5_1:    {"Q5_1", 32, 4 + 4 + 16},
	Q8_0:    {"Q8_0", QK, 2 + QK},
	Q8_1:    {"Q8_1", 32, 4 + 32},
	Q2_K:    {"Q2_K", QKK, 16 + 64 + 4},
	Q3_K:    {"Q3_K", QKK, 32 + 64 + 12 + 2},
	Q4_K:    {"Q4_K", QKK, 4 + 12 + QKK/2},
	Q5_K:    {"Q5_K", QKK, 4 + 12 + 32 + 128},
	Q6_K:    {"Q6_K", QKK, QKK/2 + QKK/4 + QKK/16 + 2},
	Q8_K:    {"Q8_K", QKK, 4 + 256 + 32},
	IQ2_XXS: {"IQ2_XXS", QKK, 2 + 64},
	IQ2_XS:  {"IQ2_XS", QKK, 2 + 64 + 8},
	IQ3_XXS: {"IQ3_XXS", QKK, 2 + 96},
	IQ1_S:   {"IQ1_S", QKK, 2 + 32 + 16},
	IQ4_NL:  {"IQ4_NL", 32, 2 + 16},
	IQ3_S:   {"IQ3_S", QKK, 2 + 64 + 8 + 32 + 4},
	IQ2_S:   {"IQ2_S", QKK, 2 + 64 + 8 + 8},
	IQ4_XS:  {"IQ4_XS", QKK, 2 + 2 + 4 + 128},
	I8:      {"I8", 1, 1},
	I16:     {"I16", 1, 2},
	I32:     {"I32", 1, 4},
	I64:     {"I64", 1, 8},
	F64:     {"F64", 1, 8},
	IQ1_M:   {"IQ1_M", QKK, 32 + 16 + 8},
	BF16:    {"BF16", 1, 2},
	TQ1_0:   {"TQ1_0", QKK, 48 + 4 + 2},
	TQ2_0:   {"TQ2_0", QKK, 64 + 2},
	MXFP4:   {"MXFP4", 32, 1 + 16},
}

// Known reports whether t is a type id ggml defines.
func (t Type) Known() bool {
	_, ok := layouts[t]
	return ok
}

// String returns ggml's name for t, or "type(N)" for an unknown id.
func (t Type) String() string {
	if l, ok := layouts[t]; ok {
		return l.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize returns the number of elements in one block of t, 0 if unknown.
func (t Type) BlockSize() int { return layouts[t].blockSize }

// BlockBytes returns the size in bytes of one block of t, 0 if unknown.
func (t Type) BlockBytes() int { return layouts[t].blockBytes }

// RowBytes returns the number of bytes n consecutive elements of t occupy.
// n must be a non-negative multiple of t's block size.
func RowBytes(t Type, n int) (int, error) {
	l, ok := layouts[t]
	if !ok {
		return 0, fmt.Errorf("ggml: unknown tensor type %v", t)
	}
	if n < 0 {
		return 0, fmt.Errorf("ggml: negative element count %d", n)
	}
	if n%l.blockSize != 0 {
		return 0, fmt.Errorf("ggml: %d elements is not a whole number of %v blocks of %d", n, t, l.blockSize)
	}
	blocks := n / l.blockSize
	if blocks > math.MaxInt/l.blockBytes {
		return 0, fmt.Errorf("ggml: %d elements of %v overflow the byte count", n, t)
	}
	return blocks * l.blockBytes, nil
}
