package main

import (
	"github.com/spf13/pflag"

	"github.com/freqkv/freqkv/chat"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama"
)

// samplerFlags are the sampling flags of chat and serve.
type samplerFlags struct{ s llama.Sampler }

func (f *samplerFlags) add(fs *pflag.FlagSet) {
	fs.Float64Var(&f.s.Temperature, "temp", 0, "temperature (0: greedy)")
	fs.IntVar(&f.s.TopK, "top-k", 40, "top-k (0: off)")
	fs.Float64Var(&f.s.TopP, "top-p", 0.95, "top-p nucleus (1: off)")
	fs.Float64Var(&f.s.MinP, "min-p", 0.05, "min-p relative to the top token (0: off)")
	fs.Uint64Var(&f.s.Seed, "seed", 0, "random seed; the same seed gives the same tokens")
}

// chatTemplate picks the template: --chat-template, else the model file's
// tokenizer.chat_template, else plain (story models such as the embedded
// stories260K have none).
func chatTemplate(choice string, f *gguf.File, m *llama.Model) (*chat.Template, error) {
	fromModel := ""
	if v, ok := f.Value("tokenizer.chat_template"); ok {
		if s, ok := v.(string); ok {
			fromModel = s
		}
	}
	bos, eos := "", ""
	if id := m.Tok.BOS(); id >= 0 {
		bos = m.Tok.Piece(id)
	}
	if id := m.Tok.EOS(); id >= 0 {
		eos = m.Tok.Piece(id)
	}
	tpl, err := chat.Resolve(choice, fromModel, bos, eos)
	if err != nil && choice == "" {
		return nil, usagef("the model's chat template does not parse (%v); pick a built-in with --chat-template (%v)", err, chat.Names())
	}
	if err != nil {
		return nil, usagef("--chat-template: %v", err)
	}
	return tpl, nil
}
