package chat

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// conversation is the fixed conversation every family renders.
var conversation = []Message{
	{Role: "system", Content: "You are terse."},
	{Role: "user", Content: "Hi!"},
	{Role: "assistant", Content: "Hello."},
	{Role: "user", Content: "Name a colour."},
}

// TestBuiltinsRender checks each family against the prompt its model card
// (the Hugging Face tokenizer_config.json's template run by transformers)
// gives for the fixed conversation with add_generation_prompt=True.
func TestBuiltinsRender(t *testing.T) {
	cases := []struct {
		name, bos, eos, want string
	}{
		{"llama-2", "<s>", "</s>",
			"<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi! [/INST] Hello. </s><s>[INST] Name a colour. [/INST]"},
		{"llama-3", "<|begin_of_text|>", "<|eot_id|>",
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nName a colour.<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"chatml", "", "<|im_end|>",
			"<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n" +
				"<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"},
		{"mistral", "<s>", "</s>",
			"<s>[INST] Hi![/INST] Hello.</s>[INST] You are terse.\n\nName a colour.[/INST]"},
		{"phi-3", "<s>", "<|endoftext|>",
			"<|system|>\nYou are terse.<|end|>\n<|user|>\nHi!<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nName a colour.<|end|>\n<|assistant|>\n"},
		{"gemma", "<bos>", "<eos>",
			"<bos><start_of_turn>user\nYou are terse.\n\nHi!<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n" +
				"<start_of_turn>user\nName a colour.<end_of_turn>\n<start_of_turn>model\n"},
		{"plain", "<s>", "</s>", "<s>You are terse. Hi! Hello. Name a colour."},
	}
	require.Len(t, cases, len(Names()), "every built-in has a case")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl, err := Resolve(c.name, "", c.bos, c.eos)
			require.NoError(t, err)
			got, err := tpl.Render(conversation, true)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestRaiseException(t *testing.T) {
	tpl, err := Resolve("llama-2", "", "<s>", "</s>")
	require.NoError(t, err)
	_, err = tpl.Render([]Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}}, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "roles must alternate")
}

func TestHelpers(t *testing.T) {
	tpl, err := Parse("t", `{{ messages | tojson }}|{{ strftime_now('%Y') | length }}|{{ bos_token }}{{ eos_token }}|{% if add_generation_prompt %}gen{% endif %}`, "B", "E")
	require.NoError(t, err)
	got, err := tpl.Render([]Message{{Role: "user", Content: "x"}}, true)
	require.NoError(t, err)
	assert.Equal(t, `[{"content":"x","role":"user"}]|4|BE|gen`, got)
}

func TestResolveErrors(t *testing.T) {
	_, err := Resolve("no-such-template", "", "", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "neither a built-in")
	_, err = Parse("bad", "{% for %}", "", "")
	require.Error(t, err)
	assert.False(t, strings.Contains(err.Error(), "\n"))
	// Templates from model files cannot read files.
	tpl, err := Parse("inc", "{% include '/etc/hostname' %}", "", "")
	if err == nil {
		_, err = tpl.Render(nil, false)
	}
	require.Error(t, err)
}
