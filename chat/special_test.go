package chat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/tokenizer"
)

func vocab(t *testing.T, rel string) tokenizer.Tokenizer {
	t.Helper()
	f, err := gguf.Open(shareddata.Path(t, rel))
	require.NoError(t, err)
	defer f.Close()
	v, err := tokenizer.FromGGUF(f)
	require.NoError(t, err)
	tok, err := tokenizer.New(v)
	require.NoError(t, err)
	return tok
}

// TestSpecialTokensSingleIDs renders the fixed conversation with real
// vocabularies and checks that each special token of the prompt is one id
// (the vocabulary's), and that the text between them is what plain
// encoding gives.
func TestSpecialTokensSingleIDs(t *testing.T) {
	cases := []struct {
		template, vocab string
		special         map[string]int32 // token text -> id, as the vocabulary has them
	}{
		{"llama-2", "models/llama-2-tiny-random.gguf", map[string]int32{"<s>": 1, "</s>": 2}},
		{"llama-2", "vocab/ggml-vocab-llama-spm.gguf", map[string]int32{"<s>": 1, "</s>": 2}},
		{"mistral", "vocab/ggml-vocab-llama-spm.gguf", map[string]int32{"<s>": 1, "</s>": 2}},
		{"phi-3", "vocab/ggml-vocab-phi-3.gguf", map[string]int32{"<|system|>": 32006, "<|user|>": 32010, "<|assistant|>": 32001, "<|end|>": 32007}},
	}
	for _, c := range cases {
		t.Run(c.template+"/"+c.vocab, func(t *testing.T) {
			tok := vocab(t, c.vocab)
			tpl, err := Resolve(c.template, "", tok.Piece(tok.BOS()), tok.Piece(tok.EOS()))
			require.NoError(t, err)
			prompt, err := tpl.Render(conversation, true)
			require.NoError(t, err)
			ids, err := tok.EncodeSpecial(prompt, false)
			require.NoError(t, err)
			counts := map[int32]int{}
			for _, id := range ids {
				counts[id]++
			}
			for text, id := range c.special {
				require.Equal(t, text, tok.Piece(id), "the vocabulary's token %d", id)
				n := countOf(prompt, text)
				require.Positive(t, n, "%q is in the prompt", text)
				assert.Equal(t, n, counts[id], "%q occurs %d times as text and must be %d single ids", text, n, n)
			}
			// Plain encoding never produces control ids from the text.
			plain, err := tok.Encode(prompt, false)
			require.NoError(t, err)
			for text, id := range c.special {
				assert.NotContains(t, plain, id, "plain Encode must not parse %q", text)
			}
		})
	}
}

func countOf(s, sub string) int {
	n := 0
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			n++
		}
	}
	return n
}
