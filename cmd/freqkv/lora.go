package main

import (
	"fmt"
	"math"
	"os"

	"github.com/freqkv/freqkv/internal/outfile"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/lora"
	"github.com/spf13/pflag"
)

// loraFlags merge a LoRA adapter (llama.cpp's GGUF layout, see docs/finetune.md) into the
// model's weights as it is opened: --lora FILE [--lora-scale X].
type loraFlags struct {
	path  string
	scale float64
	fs    *pflag.FlagSet
}

// addLoRA gives a command that runs a model the --lora flags; modelFlags.open then merges.
func (m *modelFlags) addLoRA(fs *pflag.FlagSet) {
	m.lora = &loraFlags{fs: fs}
	fs.StringVar(&m.lora.path, "lora", "", "LoRA adapter GGUF to merge into the weights at load (e.g. from 'freqkv finetune')")
	fs.Float64Var(&m.lora.scale, "lora-scale", 1, "strength of the --lora adapter: 0 is the base model, 1 the adapter as trained")
}

// files lists the model's input files (model, tokenizer, adapter), for outfile.Check.
func (m *modelFlags) files() []outfile.Named {
	out := []outfile.Named{{Name: "-m", Path: m.path}, {Name: "--tokenizer", Path: m.tokenizer}}
	if m.lora != nil {
		out = append(out, outfile.Named{Name: "--lora", Path: m.lora.path})
	}
	return out
}

func (l *loraFlags) check() error {
	if l.path == "" {
		if l.fs.Changed("lora-scale") {
			return usagef("--lora-scale needs --lora FILE")
		}
		return nil
	}
	if math.IsNaN(l.scale) || math.IsInf(l.scale, 0) {
		return usagef("--lora-scale %v is not a number", l.scale)
	}
	if _, err := os.Stat(l.path); err != nil {
		return usagef("--lora %s: %v", l.path, unwrapPath(err))
	}
	return nil
}

// apply returns the model file f (opened from modelPath) with the adapter merged (a File that
// owns f), or f when there is none. It closes f on error, and refuses an adapter given as the
// model.
func (l *loraFlags) apply(f *gguf.File, modelPath string) (*gguf.File, error) {
	if t, _ := f.String(lora.KeyType); t == lora.TypeAdapter {
		f.Close()
		return nil, usagef("%s is a LoRA adapter, not a model: give the base model as the model and the adapter with --lora", modelPath)
	}
	if l == nil || l.path == "" {
		return f, nil
	}
	if err := l.check(); err != nil {
		f.Close()
		return nil, err
	}
	a, err := lora.Open(l.path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("--lora %w", err)
	}
	merged, notes, err := lora.Apply(f, a, l.scale)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("--lora %s: %w", l.path, err)
	}
	for _, n := range notes {
		fmt.Fprintf(os.Stderr, "lora: %s\n", n)
	}
	return merged, nil
}
