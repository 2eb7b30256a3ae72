package gguf

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/model/ggml"
)

func openShared(t *testing.T, rel string) *File {
	t.Helper()
	f, err := Open(shareddata.Path(t, rel))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, f.Close()) })
	return f
}

func uintOf(t *testing.T, f *File, key string) uint64 {
	t.Helper()
	v, err := f.Uint(key)
	require.NoError(t, err)
	return v
}

func TestStories260KGGUF(t *testing.T) {
	f := openShared(t, "models/stories260K.gguf")
	assert.Equal(t, uint32(3), f.Version)
	arch, err := f.String("general.architecture")
	require.NoError(t, err)
	assert.Equal(t, "llama", arch)
	assert.Equal(t, uint64(64), uintOf(t, f, "llama.embedding_length"))
	assert.Equal(t, uint64(172), uintOf(t, f, "llama.feed_forward_length"))
	assert.Equal(t, uint64(5), uintOf(t, f, "llama.block_count"))
	assert.Equal(t, uint64(8), uintOf(t, f, "llama.attention.head_count"))
	assert.Equal(t, uint64(4), uintOf(t, f, "llama.attention.head_count_kv"))
	assert.Equal(t, uint64(2048), uintOf(t, f, "llama.context_length"))
	eps, err := f.Float("llama.attention.layer_norm_rms_epsilon")
	require.NoError(t, err)
	assert.InDelta(t, 1e-5, eps, 1e-12)

	tokens, err := f.Strings("tokenizer.ggml.tokens")
	require.NoError(t, err)
	require.Len(t, tokens, 512)
	assert.Equal(t, []string{"<unk>", "<s>", "</s>", "<0x00>"}, tokens[:4])
	scores, err := f.Float32s("tokenizer.ggml.scores")
	require.NoError(t, err)
	assert.Len(t, scores, 512)
	types, err := f.Ints("tokenizer.ggml.token_type")
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 3, 3, 6}, types[:4])

	require.Len(t, f.Tensors, 48)
	var total uint64
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		assert.Equal(t, ggml.F32, ti.Type, ti.Name)
		total += ti.Elements()
	}
	// 512*64 embedding and classifier, 5 layers of 45440, final norm.
	assert.Equal(t, uint64(2*512*64+5*45440+64), total)
	for name, dims := range map[string][]uint64{
		"token_embd.weight":        {64, 512},
		"output.weight":            {64, 512},
		"output_norm.weight":       {64},
		"blk.0.attn_q.weight":      {64, 64},
		"blk.4.attn_k.weight":      {64, 32},
		"blk.2.attn_v.weight":      {64, 32},
		"blk.3.attn_output.weight": {64, 64},
		"blk.1.ffn_gate.weight":    {64, 172},
		"blk.1.ffn_down.weight":    {172, 64},
		"blk.1.ffn_up.weight":      {64, 172},
		"blk.4.ffn_norm.weight":    {64},
		"blk.0.attn_norm.weight":   {64},
	} {
		ti, ok := f.Tensor(name)
		require.True(t, ok, name)
		assert.Equal(t, dims, ti.Dims, name)
	}

	// RMS norm weights of a trained model are positive and of order one.
	norm, _ := f.Tensor("blk.0.attn_norm.weight")
	data, err := f.TensorData(norm)
	require.NoError(t, err)
	w, err := ggml.Dequantize(norm.Type, data, int(norm.Elements()))
	require.NoError(t, err)
	for _, x := range w {
		assert.Greater(t, x, float32(0))
		assert.Less(t, x, float32(10))
	}
}

func TestTinyRandomGGUF(t *testing.T) {
	f := openShared(t, "models/llama-2-tiny-random.gguf")
	assert.Equal(t, uint64(8), uintOf(t, f, "llama.embedding_length"))
	assert.Equal(t, uint64(1), uintOf(t, f, "llama.block_count"))
	assert.Equal(t, uint64(2), uintOf(t, f, "llama.attention.head_count"))
	assert.Equal(t, uint64(32), uintOf(t, f, "llama.feed_forward_length"))
	tokens, err := f.Strings("tokenizer.ggml.tokens")
	require.NoError(t, err)
	assert.Len(t, tokens, 32000)
	require.Len(t, f.Tensors, 12)

	emb, ok := f.Tensor("token_embd.weight")
	require.True(t, ok)
	assert.Equal(t, ggml.F16, emb.Type)
	assert.Equal(t, []uint64{8, 32000}, emb.Dims)
	data, err := f.TensorData(emb)
	require.NoError(t, err)
	w, err := ggml.Dequantize(emb.Type, data, int(emb.Elements()))
	require.NoError(t, err)
	nonZero := 0
	for _, x := range w {
		require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0))
		if x != 0 {
			nonZero++
		}
	}
	assert.Greater(t, nonZero, len(w)/2)
}

func TestVocabGGUFs(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(shareddata.Path(t, "vocab"), "*.gguf"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(paths), 11, "the shared vocab directory lists 11 vocabularies")
	for _, p := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(p), ".gguf"), func(t *testing.T) {
			f, err := Open(p)
			require.NoError(t, err)
			defer f.Close()
			assert.Empty(t, f.Tensors, "vocabulary-only file")
			model, err := f.String("tokenizer.ggml.model")
			require.NoError(t, err)
			assert.Contains(t, []string{"llama", "gpt2"}, model)
			tokens, err := f.Strings("tokenizer.ggml.tokens")
			require.NoError(t, err)
			assert.Greater(t, len(tokens), 1000)
			types, err := f.Ints("tokenizer.ggml.token_type")
			require.NoError(t, err)
			assert.Len(t, types, len(tokens))
			if model == "gpt2" {
				merges, err := f.Strings("tokenizer.ggml.merges")
				require.NoError(t, err)
				assert.NotEmpty(t, merges)
			}
			// Every file re-encodes to a file that parses to the same values.
			assertRewriteIdentical(t, f)
		})
	}
}

func TestSharedModelsRewrite(t *testing.T) {
	for _, rel := range []string{"models/stories260K.gguf", "models/llama-2-tiny-random.gguf"} {
		assertRewriteIdentical(t, openShared(t, rel))
	}
}

// assertRewriteIdentical writes f's contents with Write and checks that the
// result parses to the same keys, values and tensors.
func assertRewriteIdentical(t *testing.T, f *File) {
	t.Helper()
	kv, tensors := contents(t, f)
	g, err := Parse(writeFile(t, kv, tensors))
	require.NoError(t, err)
	assert.Equal(t, f.Keys(), g.Keys())
	for _, p := range kv {
		v, _ := g.Value(p.Key)
		require.Equal(t, p.Value, v, p.Key)
	}
	require.Len(t, g.Tensors, len(tensors))
	for i, w := range tensors {
		data, err := g.TensorData(&g.Tensors[i])
		require.NoError(t, err)
		require.Equal(t, w.Data, data, w.Name)
	}
}

func contents(t testing.TB, f *File) ([]KV, []WriteTensor) {
	var kv []KV
	for _, k := range f.Keys() {
		v, _ := f.Value(k)
		kv = append(kv, KV{k, v})
	}
	var tensors []WriteTensor
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		data, err := f.TensorData(ti)
		require.NoError(t, err)
		tensors = append(tensors, WriteTensor{Name: ti.Name, Dims: ti.Dims, Type: ti.Type, Data: data})
	}
	return kv, tensors
}
