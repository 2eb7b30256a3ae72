package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/model/ggml"
)

// raw assembles GGUF bytes by hand, valid or not.
type raw struct{ bytes.Buffer }

func (r *raw) bytes(s string) { r.WriteString(s) }
func (r *raw) u8(v uint8)     { r.WriteByte(v) }
func (r *raw) u32(v uint32)   { r.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func (r *raw) u64(v uint64)   { r.Write(binary.LittleEndian.AppendUint64(nil, v)) }
func (r *raw) f32(v float32)  { r.u32(math.Float32bits(v)) }
func (r *raw) str(s string)   { r.u64(uint64(len(s))); r.WriteString(s) }

// header starts a version 3 file with the given counts.
func header(tensors, kvs uint64) *raw {
	r := &raw{}
	r.bytes("GGUF")
	r.u32(3)
	r.u64(tensors)
	r.u64(kvs)
	return r
}

// tensorInfo appends one tensor info.
func (r *raw) tensorInfo(name string, dims []uint64, typ ggml.Type, offset uint64) {
	r.str(name)
	r.u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	r.u32(uint32(typ))
	r.u64(offset)
}

// withData pads to 32 and appends n zero bytes of tensor data.
func (r *raw) withData(n int) []byte {
	for r.Len()%32 != 0 {
		r.u8(0)
	}
	r.Write(make([]byte, n))
	return r.Bytes()
}

func TestParseRejectsCorruptFiles(t *testing.T) {
	cases := []struct {
		name string
		file func() []byte
		want string
	}{
		{"magic", func() []byte { return []byte("GGML\x03\x00\x00\x00") }, "not a GGUF file"},
		{"empty", func() []byte { return nil }, "not a GGUF file"},
		{"version 1", func() []byte {
			r := &raw{}
			r.bytes("GGUF")
			r.u32(1)
			return r.Bytes()
		}, "unsupported version 1"},
		{"version 0", func() []byte {
			r := &raw{}
			r.bytes("GGUF")
			r.u32(0)
			return r.Bytes()
		}, "unsupported version 0"},
		{"big endian", func() []byte {
			r := &raw{}
			r.bytes("GGUF")
			r.u32(3 << 24)
			return r.Bytes()
		}, "big-endian"},
		{"kv count", func() []byte { return header(0, 1<<40).Bytes() }, "metadata pairs cannot fit"},
		{"tensor count", func() []byte { return header(1<<60, 0).Bytes() }, "tensor infos cannot fit"},
		{"key length", func() []byte {
			r := header(0, 1)
			r.u64(1 << 62)
			r.bytes("k\x04\x00\x00\x00\x01\x00\x00\x00")
			return r.Bytes()
		}, "metadata pair 0: key"},
		{"string length", func() []byte {
			r := header(0, 1)
			r.str("general.name")
			r.u32(uint32(TypeString))
			r.u64(math.MaxUint64)
			r.bytes("abc")
			return r.Bytes()
		}, `key "general.name"`},
		{"array count", func() []byte {
			r := header(0, 1)
			r.str("tokenizer.ggml.scores")
			r.u32(uint32(TypeArray))
			r.u32(uint32(TypeFloat32))
			r.u64(1 << 61)
			r.f32(1)
			return r.Bytes()
		}, `key "tokenizer.ggml.scores": unexpected end of file: array of 2305843009213693952 float32`},
		{"string array count", func() []byte {
			r := header(0, 1)
			r.str("tokenizer.ggml.tokens")
			r.u32(uint32(TypeArray))
			r.u32(uint32(TypeString))
			r.u64(3)
			r.str("a")
			r.str("b")
			return r.Bytes()
		}, `key "tokenizer.ggml.tokens"`},
		{"value type", func() []byte {
			r := header(0, 1)
			r.str("k")
			r.u32(13)
			r.u64(0)
			return r.Bytes()
		}, `key "k": unknown value type 13`},
		{"array element type", func() []byte {
			r := header(0, 1)
			r.str("k")
			r.u32(uint32(TypeArray))
			r.u32(99)
			r.u64(0)
			return r.Bytes()
		}, `key "k": array of unknown value type 99`},
		{"nesting", func() []byte {
			r := header(0, 1)
			r.str("deep")
			r.u32(uint32(TypeArray))
			for range 20 {
				r.u32(uint32(TypeArray))
				r.u64(1)
			}
			return r.Bytes()
		}, `key "deep"`},
		{"bool", func() []byte {
			r := header(0, 1)
			r.str("flag")
			r.u32(uint32(TypeBool))
			r.u8(2)
			return r.Bytes()
		}, `key "flag": invalid bool byte 2`},
		{"duplicate key", func() []byte {
			r := header(0, 2)
			for range 2 {
				r.str("k")
				r.u32(uint32(TypeUint8))
				r.u8(1)
			}
			return r.Bytes()
		}, `key "k": duplicate`},
		{"alignment type", func() []byte {
			r := header(0, 1)
			r.str(AlignmentKey)
			r.u32(uint32(TypeUint64))
			r.u64(32)
			return r.Bytes()
		}, AlignmentKey},
		{"alignment zero", func() []byte {
			r := header(0, 1)
			r.str(AlignmentKey)
			r.u32(uint32(TypeUint32))
			r.u32(0)
			return r.Bytes()
		}, "not a power of two"},
		{"n_dims", func() []byte {
			r := header(1, 0)
			r.tensorInfo("blk.0.attn_q.weight", []uint64{1, 1, 1, 1, 1}, ggml.F32, 0)
			return r.withData(4)
		}, `tensor "blk.0.attn_q.weight": n_dims 5`},
		{"zero dims", func() []byte {
			r := header(1, 0)
			r.tensorInfo("scalar", nil, ggml.F32, 0)
			r.bytes("padding.to.fit.the.minimum.size")
			return r.withData(4)
		}, `tensor "scalar": n_dims 0`},
		{"dims overflow", func() []byte {
			r := header(1, 0)
			r.tensorInfo("big", []uint64{1 << 32, 1 << 32}, ggml.F32, 0)
			return r.withData(4)
		}, `tensor "big": dimensions [4294967296 4294967296]: element count overflows`},
		{"bytes overflow", func() []byte {
			r := header(1, 0)
			r.tensorInfo("big", []uint64{1 << 31, 1 << 31}, ggml.F32, 0)
			return r.withData(4)
		}, `tensor "big": dimensions [2147483648 2147483648]: byte size overflows`},
		{"absurd dims", func() []byte {
			r := header(1, 0)
			r.tensorInfo("token_embd.weight", []uint64{4096, 1 << 20}, ggml.Q4_K, 0)
			return r.withData(4)
		}, `tensor "token_embd.weight": 2415919104 bytes at data offset 0 run past the end`},
		{"unknown type", func() []byte {
			r := header(1, 0)
			r.tensorInfo("odd", []uint64{32}, ggml.Type(5), 0)
			return r.withData(64)
		}, `tensor "odd": unknown tensor type type(5)`},
		{"block size", func() []byte {
			r := header(1, 0)
			r.tensorInfo("q", []uint64{48}, ggml.Q8_0, 0)
			return r.withData(68)
		}, `tensor "q": row length 48 is not a multiple of the Q8_0 block size 32`},
		{"misaligned", func() []byte {
			r := header(1, 0)
			r.tensorInfo("w", []uint64{2}, ggml.F32, 4)
			return r.withData(64)
		}, `tensor "w": offset 4 is not a multiple of the alignment 32`},
		{"past end", func() []byte {
			r := header(2, 0)
			r.tensorInfo("a", []uint64{8}, ggml.F32, 0)
			r.tensorInfo("b", []uint64{8}, ggml.F32, 32)
			return r.withData(63)
		}, `tensor "b": 32 bytes at data offset 32 run past the end of the file`},
		{"offset overflow", func() []byte {
			r := header(1, 0)
			r.tensorInfo("w", []uint64{8}, ggml.F32, math.MaxUint64-31)
			return r.withData(32)
		}, `tensor "w"`},
		{"duplicate tensor", func() []byte {
			r := header(2, 0)
			r.tensorInfo("w", []uint64{8}, ggml.F32, 0)
			r.tensorInfo("w", []uint64{8}, ggml.F32, 32)
			return r.withData(64)
		}, `tensor "w": duplicate name`},
		{"tensor name", func() []byte {
			r := header(1, 0)
			r.u64(1 << 40)
			r.bytes(string(make([]byte, 40)))
			return r.Bytes()
		}, "tensor 0: name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.file())
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestParseAcceptsHandBuiltFile(t *testing.T) {
	// A version 2 file with general.alignment = 8 and one tensor, built by
	// hand: the reader agrees with the specification, not only the writer.
	r := &raw{}
	r.bytes("GGUF")
	r.u32(2)
	r.u64(1)
	r.u64(2)
	r.str(AlignmentKey)
	r.u32(uint32(TypeUint32))
	r.u32(8)
	r.str("name")
	r.u32(uint32(TypeString))
	r.str("tiny")
	r.tensorInfo("v", []uint64{3}, ggml.F32, 0)
	for r.Len()%8 != 0 {
		r.u8(0)
	}
	dataStart := r.Len()
	r.f32(1)
	r.f32(-2)
	r.f32(0.5)

	f, err := Parse(r.Bytes())
	require.NoError(t, err)
	assert.Equal(t, uint32(2), f.Version)
	assert.Equal(t, uint64(8), f.Alignment)
	assert.Equal(t, uint64(dataStart), f.DataOffset)
	name, err := f.String("name")
	require.NoError(t, err)
	assert.Equal(t, "tiny", name)
	info, ok := f.Tensor("v")
	require.True(t, ok)
	data, err := f.TensorData(info)
	require.NoError(t, err)
	vals, err := ggml.Dequantize(info.Type, data, int(info.Elements()))
	require.NoError(t, err)
	assert.Equal(t, []float32{1, -2, 0.5}, vals)
}

func TestParseVocabOnlyFileEndsBeforeDataSection(t *testing.T) {
	// Files without tensors may end right after the metadata, short of the
	// aligned data offset.
	r := header(0, 1)
	r.str("k")
	r.u32(uint32(TypeUint8))
	r.u8(1)
	require.NotZero(t, r.Len()%32)
	f, err := Parse(r.Bytes())
	require.NoError(t, err)
	assert.Empty(t, f.Tensors)
}
