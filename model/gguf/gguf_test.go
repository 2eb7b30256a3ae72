package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/model/ggml"
)

// sampleKV covers every value type, empty and nested arrays.
func sampleKV() []KV {
	return []KV{
		{"general.architecture", "llama"},
		{"u8", uint8(200)},
		{"i8", int8(-100)},
		{"u16", uint16(60000)},
		{"i16", int16(-30000)},
		{"u32", uint32(4000000000)},
		{"i32", int32(-2000000000)},
		{"f32", float32(-1.5e-7)},
		{"yes", true},
		{"no", false},
		{"empty.string", ""},
		{"unicode", "héllo ▁wörld \x00 end"},
		{"u64", uint64(math.MaxUint64)},
		{"i64", int64(math.MinInt64)},
		{"f64", math.Pi},
		{"a.u8", []uint8{1, 2, 255}},
		{"a.i8", []int8{-1, 0, 127}},
		{"a.u16", []uint16{0, 65535}},
		{"a.i16", []int16{-32768}},
		{"a.u32", []uint32{7, 8, 9}},
		{"a.i32", []int32{-7, 8}},
		{"a.f32", []float32{1, -2.5, float32(math.Inf(1))}},
		{"a.bool", []bool{true, false, true}},
		{"a.string", []string{"<unk>", "", "▁the"}},
		{"a.u64", []uint64{1 << 63}},
		{"a.i64", []int64{-1 << 62}},
		{"a.f64", []float64{0.1, -0}},
		{"a.empty", []uint32{}},
		{"a.nested", []any{[]string{"x", "y"}, []int32{1}, []any{[]bool{true}}, []float64{}}},
		{"a.nested.empty", []any{}},
	}
}

func sampleTensors(rng *rand.Rand) []WriteTensor {
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	q, err := ggml.Quantize(ggml.Q8_0, []float32{31: 1.5, 3: -2})
	if err != nil {
		panic(err)
	}
	return []WriteTensor{
		{Name: "token_embd.weight", Dims: []uint64{4, 3}, Type: ggml.F32, Data: random(48)},
		{Name: "odd.f16", Dims: []uint64{5}, Type: ggml.F16, Data: random(10)},
		{Name: "q8", Dims: []uint64{32, 1}, Type: ggml.Q8_0, Data: q},
		{Name: "q4k.3d", Dims: []uint64{256, 2, 3}, Type: ggml.Q4_K, Data: random(6 * 144)},
		{Name: "q6k.4d", Dims: []uint64{256, 1, 1, 2}, Type: ggml.Q6_K, Data: random(2 * 210)},
		{Name: "empty", Dims: []uint64{0}, Type: ggml.F32, Data: []byte{}},
		{Name: "iq", Dims: []uint64{256}, Type: ggml.IQ2_XXS, Data: random(66)},
	}
}

func writeFile(t testing.TB, kv []KV, tensors []WriteTensor) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, kv, tensors))
	return buf.Bytes()
}

func checkRoundTrip(t *testing.T, f *File, kv []KV, tensors []WriteTensor, align uint64) {
	t.Helper()
	assert.Equal(t, uint32(3), f.Version)
	assert.Equal(t, align, f.Alignment)
	assert.Zero(t, f.DataOffset%align)
	keys := make([]string, len(kv))
	for i, p := range kv {
		keys[i] = p.Key
		got, ok := f.Value(p.Key)
		require.True(t, ok, p.Key)
		assert.Equal(t, p.Value, got, p.Key)
	}
	assert.Equal(t, keys, f.Keys())
	require.Len(t, f.Tensors, len(tensors))
	for i, w := range tensors {
		info, ok := f.Tensor(w.Name)
		require.True(t, ok, w.Name)
		assert.Same(t, &f.Tensors[i], info, "tensors in file order")
		assert.Equal(t, w.Dims, info.Dims, w.Name)
		assert.Equal(t, w.Type, info.Type, w.Name)
		assert.Zero(t, info.Offset%align, w.Name)
		assert.Equal(t, uint64(len(w.Data)), info.Bytes(), w.Name)
		data, err := f.TensorData(info)
		require.NoError(t, err, w.Name)
		assert.Equal(t, w.Data, data, w.Name)
	}
}

func TestWriteParseRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	kv, tensors := sampleKV(), sampleTensors(rng)
	f, err := Parse(writeFile(t, kv, tensors))
	require.NoError(t, err)
	checkRoundTrip(t, f, kv, tensors, DefaultAlignment)
}

func TestRoundTripWithAlignmentKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	kv := append(sampleKV(), KV{AlignmentKey, uint32(64)})
	tensors := sampleTensors(rng)
	data := writeFile(t, kv, tensors)
	f, err := Parse(data)
	require.NoError(t, err)
	checkRoundTrip(t, f, kv, tensors, 64)
	// Each tensor's data is padded to the alignment, the last one included.
	assert.Zero(t, len(data)%64)
}

func TestOpenMapsFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	kv, tensors := sampleKV(), sampleTensors(rng)
	path := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, os.WriteFile(path, writeFile(t, kv, tensors), 0o600))
	f, err := Open(path)
	require.NoError(t, err)
	checkRoundTrip(t, f, kv, tensors, DefaultAlignment)

	require.NoError(t, f.Close())
	require.NoError(t, f.Close(), "Close is idempotent")
	_, err = f.TensorData(&f.Tensors[0])
	assert.ErrorIs(t, err, ErrClosed)
	s, err := f.String("general.architecture")
	require.NoError(t, err, "metadata outlives the mapping")
	assert.Equal(t, "llama", s)
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(filepath.Join(dir, "absent.gguf"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	empty := filepath.Join(dir, "empty.gguf")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	_, err = Open(empty)
	assert.Error(t, err)
	bad := filepath.Join(dir, "bad.gguf")
	require.NoError(t, os.WriteFile(bad, []byte("GGUF\x03\x00\x00\x00"), 0o600))
	_, err = Open(bad)
	assert.ErrorContains(t, err, "bad.gguf")
}

// TestWriteLayout checks the writer's bytes against a file assembled by hand
// from the specification, so that reader and writer cannot share a mistake.
func TestWriteLayout(t *testing.T) {
	var want raw
	want.bytes("GGUF")
	want.u32(3)
	want.u64(1) // tensors
	want.u64(2) // metadata pairs
	want.str("a")
	want.u32(uint32(TypeUint32))
	want.u32(7)
	want.str("arr")
	want.u32(uint32(TypeArray))
	want.u32(uint32(TypeString))
	want.u64(2)
	want.str("x")
	want.str("yz")
	want.str("t")
	want.u32(2)
	want.u64(2)
	want.u64(1)
	want.u32(uint32(ggml.F32))
	want.u64(0)
	for want.Len()%32 != 0 {
		want.bytes("\x00")
	}
	want.f32(1.5)
	want.f32(-2)
	for want.Len()%32 != 0 {
		want.bytes("\x00")
	}
	tensorData := binary.LittleEndian.AppendUint32(nil, math.Float32bits(1.5))
	tensorData = binary.LittleEndian.AppendUint32(tensorData, math.Float32bits(-2))

	got := writeFile(t,
		[]KV{{"a", uint32(7)}, {"arr", []string{"x", "yz"}}},
		[]WriteTensor{{Name: "t", Dims: []uint64{2, 1}, Type: ggml.F32, Data: tensorData}})
	assert.Equal(t, want.Bytes(), got)
}

func TestWriteRejects(t *testing.T) {
	f32 := []WriteTensor{{Name: "t", Dims: []uint64{2}, Type: ggml.F32, Data: make([]byte, 8)}}
	cases := []struct {
		name    string
		kv      []KV
		tensors []WriteTensor
		want    string
	}{
		{"int", []KV{{"n", 3}}, nil, `key "n": unsupported Go type int`},
		{"duplicate key", []KV{{"k", true}, {"k", false}}, nil, `key "k": duplicate`},
		{"nested non-array", []KV{{"k", []any{"x"}}}, nil, `key "k": element 0`},
		{"alignment type", []KV{{AlignmentKey, uint64(32)}}, nil, AlignmentKey},
		{"alignment power", []KV{{AlignmentKey, uint32(24)}}, nil, AlignmentKey},
		{"data size", nil, []WriteTensor{{Name: "t", Dims: []uint64{3}, Type: ggml.F32, Data: make([]byte, 8)}}, `tensor "t": F32 [3] needs 12 bytes, got 8`},
		{"duplicate tensor", nil, append(f32, f32...), `tensor "t": duplicate`},
		{"no dims", nil, []WriteTensor{{Name: "t", Type: ggml.F32}}, `tensor "t"`},
		{"five dims", nil, []WriteTensor{{Name: "t", Dims: []uint64{1, 1, 1, 1, 1}, Type: ggml.F32, Data: make([]byte, 4)}}, "5 dimensions"},
		{"block", nil, []WriteTensor{{Name: "t", Dims: []uint64{16}, Type: ggml.Q4_0, Data: make([]byte, 9)}}, "block size"},
		{"unknown type", nil, []WriteTensor{{Name: "t", Dims: []uint64{1}, Type: 77, Data: make([]byte, 1)}}, "type(77)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Write(&bytes.Buffer{}, c.kv, c.tensors)
			assert.ErrorContains(t, err, c.want)
		})
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		return 0, errors.New("disk full")
	}
	w.after -= len(p)
	return len(p), nil
}

func TestWritePropagatesWriterErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	err := Write(&failingWriter{after: 100}, sampleKV(), sampleTensors(rng))
	assert.ErrorContains(t, err, "disk full")
}

func TestEveryTruncationFails(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	data := writeFile(t, sampleKV(), sampleTensors(rng))
	full, err := Parse(data)
	require.NoError(t, err)
	// Only the padding after the last tensor's data may be cut.
	var end uint64
	for _, ti := range full.Tensors {
		end = max(end, full.DataOffset+ti.Offset+ti.Bytes())
	}
	require.Less(t, end, uint64(len(data)))
	for n := range end {
		_, err := Parse(data[:n])
		require.Errorf(t, err, "prefix of %d bytes", n)
	}
}

func TestTypedGetters(t *testing.T) {
	f, err := Parse(writeFile(t, sampleKV(), nil))
	require.NoError(t, err)

	s, err := f.String("general.architecture")
	require.NoError(t, err)
	assert.Equal(t, "llama", s)
	for key, want := range map[string]uint64{"u8": 200, "u16": 60000, "u32": 4000000000, "u64": math.MaxUint64} {
		got, err := f.Uint(key)
		require.NoError(t, err, key)
		assert.Equal(t, want, got, key)
	}
	_, err = f.Uint("i8")
	assert.ErrorContains(t, err, `key "i8": negative value -100`)
	x, err := f.Float("f32")
	require.NoError(t, err)
	assert.Equal(t, float64(float32(-1.5e-7)), x)
	x, err = f.Float("f64")
	require.NoError(t, err)
	assert.Equal(t, math.Pi, x)
	b, err := f.Bool("yes")
	require.NoError(t, err)
	assert.True(t, b)
	ss, err := f.Strings("a.string")
	require.NoError(t, err)
	assert.Equal(t, []string{"<unk>", "", "▁the"}, ss)
	ss[0] = "changed"
	again, _ := f.Strings("a.string")
	assert.Equal(t, "<unk>", again[0], "Strings returns a copy")
	fs, err := f.Float32s("a.f32")
	require.NoError(t, err)
	assert.Equal(t, []float32{1, -2.5, float32(math.Inf(1))}, fs)
	for key, want := range map[string][]int64{
		"a.u8": {1, 2, 255}, "a.i8": {-1, 0, 127}, "a.u16": {0, 65535}, "a.i16": {-32768},
		"a.u32": {7, 8, 9}, "a.i32": {-7, 8}, "a.i64": {-1 << 62}, "a.empty": {},
	} {
		got, err := f.Ints(key)
		require.NoError(t, err, key)
		assert.Equal(t, want, got, key)
	}
	_, err = f.Ints("a.u64")
	assert.ErrorContains(t, err, "overflows int64")

	// Missing keys and wrong types name the key.
	_, err = f.String("nope")
	assert.ErrorIs(t, err, ErrMissing)
	assert.ErrorContains(t, err, `"nope"`)
	for _, err := range []error{
		func() error { _, err := f.String("u8"); return err }(),
		func() error { _, err := f.Uint("f32"); return err }(),
		func() error { _, err := f.Float("u32"); return err }(),
		func() error { _, err := f.Bool("u8"); return err }(),
		func() error { _, err := f.Strings("a.u8"); return err }(),
		func() error { _, err := f.Float32s("a.f64"); return err }(),
		func() error { _, err := f.Ints("a.f32"); return err }(),
	} {
		assert.ErrorContains(t, err, "key \"")
		assert.ErrorContains(t, err, "want")
	}
	_, err = f.Strings("a.u8")
	assert.ErrorContains(t, err, "type array of uint8, want array of string")
	_, ok := f.Tensor("nope")
	assert.False(t, ok)
}

func TestTensorDataChecksInfo(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	f, err := Parse(writeFile(t, nil, sampleTensors(rng)))
	require.NoError(t, err)
	bad := f.Tensors[0]
	bad.Offset = 1 << 40
	_, err = f.TensorData(&bad)
	assert.ErrorContains(t, err, "outside the file")
	bad = f.Tensors[0]
	bad.Dims = nil
	_, err = f.TensorData(&bad)
	assert.Error(t, err)
}
