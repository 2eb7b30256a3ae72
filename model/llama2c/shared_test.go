package llama2c

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/model/gguf"
)

func readStories(t *testing.T) (*Checkpoint, *Tokenizer) {
	t.Helper()
	ck, err := ReadCheckpoint(shareddata.Path(t, "models/stories260K.bin"))
	require.NoError(t, err)
	tok, err := ReadTokenizer(shareddata.Path(t, "models/tok512.bin"), ck.VocabSize)
	require.NoError(t, err)
	return ck, tok
}

func TestStories260KCheckpoint(t *testing.T) {
	ck, tok := readStories(t)
	assert.Equal(t, Config{Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4,
		VocabSize: 512, SeqLen: 512, SharedClassifier: true}, ck.Config)
	assert.Equal(t, 8, ck.HeadSize())
	assert.Equal(t, 32, ck.KVDim())
	assert.Nil(t, ck.Classifier)

	assert.Equal(t, 7, tok.MaxTokenLength)
	require.Len(t, tok.Tokens, 512)
	assert.Equal(t, "\n<s>\n", tok.Tokens[1])
	assert.Equal(t, "<0xFF>", tok.Tokens[258])
	assert.Equal(t, " t", tok.Tokens[259])
	assert.Equal(t, "he", tok.Tokens[260])
	assert.Equal(t, float32(-1), tok.Scores[260])
	for _, s := range tok.Tokens {
		assert.LessOrEqual(t, len(s), tok.MaxTokenLength)
	}
}

// The shared stories260K.gguf is ggml-org's conversion of the same weights.
// Converting the llama2.c files must reproduce its tensors bit for bit —
// attn_q and attn_k included, which shows that llama2.c's pair-wise RoPE
// layout needs no permutation — and its vocabulary.
func TestConvertMatchesReferenceGGUF(t *testing.T) {
	ck, tok := readStories(t)
	var buf bytes.Buffer
	require.NoError(t, Convert(&buf, ck, tok))
	got, err := gguf.Parse(buf.Bytes())
	require.NoError(t, err)
	ref, err := gguf.Open(shareddata.Path(t, "models/stories260K.gguf"))
	require.NoError(t, err)
	defer ref.Close()

	// The reference stores the tied classifier as a copy of the embedding.
	assert.Len(t, ref.Tensors, len(got.Tensors)+1)
	_, hasOutput := got.Tensor("output.weight")
	assert.False(t, hasOutput, "a shared classifier is left tied")
	embd, _ := ref.Tensor("token_embd.weight")
	out, ok := ref.Tensor("output.weight")
	require.True(t, ok)
	a, err := ref.TensorData(embd)
	require.NoError(t, err)
	b, err := ref.TensorData(out)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(a, b), "reference output.weight equals token_embd.weight")

	for i := range got.Tensors {
		g := &got.Tensors[i]
		r, ok := ref.Tensor(g.Name)
		require.True(t, ok, g.Name)
		assert.Equal(t, r.Dims, g.Dims, g.Name)
		assert.Equal(t, r.Type, g.Type, g.Name)
		gd, err := got.TensorData(g)
		require.NoError(t, err)
		rd, err := ref.TensorData(r)
		require.NoError(t, err)
		assert.Truef(t, bytes.Equal(gd, rd), "tensor %s differs from the reference", g.Name)
	}

	for _, key := range []string{"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
		"tokenizer.ggml.model", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
		"tokenizer.ggml.unknown_token_id", "general.architecture", "llama.embedding_length",
		"llama.feed_forward_length", "llama.block_count", "llama.attention.head_count",
		"llama.attention.head_count_kv", "llama.rope.dimension_count", "llama.attention.layer_norm_rms_epsilon"} {
		want, ok := ref.Value(key)
		require.True(t, ok, key)
		have, ok := got.Value(key)
		require.True(t, ok, key)
		assert.Equal(t, want, have, key)
	}
	// The reference claims 2048; the model was trained at 512, which the
	// checkpoint records.
	ctx, err := got.Uint("llama.context_length")
	require.NoError(t, err)
	assert.Equal(t, uint64(512), ctx)
}
