package tokenizer

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/model/gguf"
)

// ggufFile builds an in-memory GGUF file holding kv.
func ggufFile(t *testing.T, kv ...gguf.KV) *gguf.File {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, gguf.Write(&b, kv, nil))
	f, err := gguf.Parse(b.Bytes())
	require.NoError(t, err)
	return f
}

func TestFromGGUFDefaultsAndOverrides(t *testing.T) {
	tokens := []string{"<unk>", "<s>", "</s>", "▁a"}
	f := ggufFile(t,
		gguf.KV{Key: "tokenizer.ggml.model", Value: "llama"},
		gguf.KV{Key: "tokenizer.ggml.tokens", Value: tokens},
		gguf.KV{Key: "tokenizer.ggml.scores", Value: []int32{0, 0, 0, -3}}, // integer scores, as llama.cpp allows
		gguf.KV{Key: "tokenizer.ggml.token_type", Value: []int32{2, 3, 3, 9}},
		gguf.KV{Key: "tokenizer.ggml.eos_token_id", Value: uint32(3)},
		gguf.KV{Key: "tokenizer.ggml.padding_token_id", Value: uint32(0xFFFFFFFF)}, // none
		gguf.KV{Key: "tokenizer.ggml.add_space_prefix", Value: false},
		gguf.KV{Key: "tokenizer.ggml.add_eos_token", Value: true},
	)
	v, err := FromGGUF(f)
	require.NoError(t, err)
	assert.Equal(t, &Vocab{
		Model:  ModelSPM,
		Tokens: tokens,
		Scores: []float32{0, 0, 0, -3},
		Types:  []int32{TypeUnknown, TypeControl, TypeControl, TypeUndefined},
		BOS:    1, EOS: 3, UNK: 0, PAD: -1,
		AddBOS: true, AddEOS: true, AddSpacePrefix: false,
	}, v)

	f = ggufFile(t,
		gguf.KV{Key: "tokenizer.ggml.model", Value: "gpt2"},
		gguf.KV{Key: "tokenizer.ggml.pre", Value: "llama-bpe"},
		gguf.KV{Key: "tokenizer.ggml.tokens", Value: []string{"a", "b", "ab"}},
		gguf.KV{Key: "tokenizer.ggml.merges", Value: []string{"a b"}},
		gguf.KV{Key: "tokenizer.ggml.bos_token_id", Value: uint32(2)},
	)
	v, err = FromGGUF(f)
	require.NoError(t, err)
	assert.Equal(t, &Vocab{
		Model: ModelBPE, Pre: "llama-bpe",
		Tokens: []string{"a", "b", "ab"}, Merges: []string{"a b"},
		BOS: 2, EOS: -1, UNK: -1, PAD: -1,
		AddBOS: true, // Llama 3 pre-tokenizers imply BOS
	}, v)
}

func TestFromGGUFErrors(t *testing.T) {
	model := func(m string) gguf.KV { return gguf.KV{Key: "tokenizer.ggml.model", Value: m} }
	tokens := gguf.KV{Key: "tokenizer.ggml.tokens", Value: []string{"a"}}
	tests := []struct {
		name string
		kv   []gguf.KV
		err  string
	}{
		{"no model", []gguf.KV{tokens}, "tokenizer.ggml.model"},
		{"unsupported", []gguf.KV{model("bert"), tokens}, `"bert" is not supported`},
		{"no tokens", []gguf.KV{model("llama")}, "tokenizer.ggml.tokens"},
		{"no merges", []gguf.KV{model("gpt2"), tokens}, "tokenizer.ggml.merges"},
		{"tokens type", []gguf.KV{model("llama"), {Key: "tokenizer.ggml.tokens", Value: uint32(1)}}, "tokenizer.ggml.tokens"},
		{"scores type", []gguf.KV{model("llama"), tokens, {Key: "tokenizer.ggml.scores", Value: "x"}}, "tokenizer.ggml.scores"},
		{"types type", []gguf.KV{model("llama"), tokens, {Key: "tokenizer.ggml.token_type", Value: []string{"x"}}}, "tokenizer.ggml.token_type"},
		{"bos type", []gguf.KV{model("llama"), tokens, {Key: "tokenizer.ggml.bos_token_id", Value: "x"}}, "tokenizer.ggml.bos_token_id"},
		{"bos out of range", []gguf.KV{model("llama"), tokens, {Key: "tokenizer.ggml.bos_token_id", Value: uint32(99)}}, "tokenizer.ggml.bos_token_id 99 is outside the vocabulary of 1 tokens"},
		{"eos out of range", []gguf.KV{model("llama"), tokens, {Key: "tokenizer.ggml.eos_token_id", Value: uint64(1 << 40)}}, "tokenizer.ggml.eos_token_id 1099511627776 is outside"},
		{"flag type", []gguf.KV{model("llama"), tokens, {Key: "tokenizer.ggml.add_bos_token", Value: uint8(1)}}, "tokenizer.ggml.add_bos_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromGGUF(ggufFile(t, tt.kv...))
			assert.ErrorContains(t, err, tt.err)
		})
	}
}
