package tokenizer

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// byteLevelVocab is a byte-level BPE vocabulary of the 256 byte runes, a few
// merges, and the given control tokens after them.
func byteLevelVocab(pre string, control ...string) *Vocab {
	v := &Vocab{Model: ModelBPE, Pre: pre, BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	for b := range 256 {
		v.Tokens = append(v.Tokens, byteRunes[b])
		v.Types = append(v.Types, TypeNormal)
	}
	v.Tokens = append(v.Tokens, "us", "er", "user")
	v.Types = append(v.Types, TypeNormal, TypeNormal, TypeNormal)
	v.Merges = []string{"u s", "e r", "us er"}
	for _, c := range control {
		v.Tokens = append(v.Tokens, c)
		v.Types = append(v.Types, TypeControl)
	}
	return v
}

// TestChatTemplateSpecialTokens: the control tokens of Llama 3, ChatML
// (Qwen) and Gemma prompts become single ids through EncodeSpecial, the text
// between them is encoded as it would be alone, and plain Encode never
// produces them (a user typing "<|im_start|>" gets its characters).
func TestChatTemplateSpecialTokens(t *testing.T) {
	llama3 := []string{"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}
	chatml := []string{"<|im_start|>", "<|im_end|>"}
	for _, c := range []struct {
		name    string
		vocab   *Vocab
		control []string
		prompt  []string // text and control tokens alternating, control at odd indices
	}{
		{"llama-bpe", byteLevelVocab("llama-bpe", llama3...), llama3,
			[]string{"", "<|begin_of_text|>", "", "<|start_header_id|>", "user", "<|end_header_id|>", "\n\nHi 123", "<|eot_id|>", ""}},
		{"qwen2", byteLevelVocab("qwen2", chatml...), chatml,
			[]string{"", "<|im_start|>", "user\nHi 123", "<|im_end|>", "\n", "<|im_start|>", "assistant\n"}},
		{"gemma-spm", gemmaVocab(), []string{"<start_of_turn>", "<end_of_turn>"},
			[]string{"", "<start_of_turn>", "user\nab", "<end_of_turn>", "\n", "<start_of_turn>", "ba"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok, err := New(c.vocab)
			require.NoError(t, err)
			ids := map[string]int32{}
			for id, text := range c.vocab.Tokens {
				ids[text] = int32(id)
			}
			var text string
			var want []int32
			for i, part := range c.prompt {
				text += part
				if i%2 == 1 {
					want = append(want, ids[part])
					continue
				}
				if part == "" {
					continue
				}
				alone, err := tok.Encode(part, false)
				require.NoError(t, err)
				want = append(want, alone...)
			}
			got, err := tok.EncodeSpecial(text, false)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			plain, err := tok.Encode(text, false)
			require.NoError(t, err)
			for _, ctl := range c.control {
				assert.NotContains(t, plain, ids[ctl], "Encode must not parse %s", ctl)
			}
			back, err := tok.Decode(plain)
			require.NoError(t, err)
			assert.Contains(t, back, c.control[0], "the user's text survives as characters")
		})
	}
}

// gemmaVocab is spmVocab with Gemma's turn markers as control tokens.
func gemmaVocab() *Vocab {
	v := spmVocab()
	v.AddSpacePrefix = false
	for _, c := range []string{"<start_of_turn>", "<end_of_turn>"} {
		v.Tokens = append(v.Tokens, c)
		v.Types = append(v.Types, TypeControl)
		v.Scores = append(v.Scores, 0)
	}
	return v
}
