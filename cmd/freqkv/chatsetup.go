package main

import (
	"github.com/spf13/pflag"

	"github.com/freqkv/freqkv/chat"
	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
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

// chatModel is what chat and serve share: the model on a device, its chat template,
// and the cache spec every conversation gets.
type chatModel struct {
	dev  *engine.Device
	m    *llama.Model
	tpl  *chat.Template
	spec kvcache.Spec
}

// loadChatModel checks the flags, loads the model and picks its template and cache spec
// (the first --cache policy). The caller closes dev.
func loadChatModel(mf *modelFlags, cf *cacheFlags, template string, quiet bool) (*chatModel, error) {
	kinds, err := cf.policies()
	if err != nil {
		return nil, err
	}
	if err := mf.check(); err != nil {
		return nil, err
	}
	dev, m, f, err := mf.loadFile(quiet)
	if err != nil {
		return nil, err
	}
	tpl, err := chatTemplate(template, f, m)
	if err == nil {
		var spec kvcache.Spec
		if spec, err = cf.spec(dev, kinds[0], m.H.ContextLength); err == nil {
			return &chatModel{dev: dev, m: m, tpl: tpl, spec: spec}, nil
		}
	}
	dev.Close()
	return nil, err
}
