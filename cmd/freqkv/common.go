package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/model"
	"github.com/freqkv/freqkv/model/builtin"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// modelFlags are shared by every command that loads a model.
type modelFlags struct {
	path      string
	tokenizer string
	adapter   string
	lora      *loraFlags // set by addLoRA: an adapter merged into the weights at open
}

func (m *modelFlags) add(fs *pflag.FlagSet) {
	fs.StringVarP(&m.path, "model", "m", "", "model file: GGUF, or a llama2.c checkpoint (with --tokenizer); default: the embedded stories260K")
	fs.StringVar(&m.tokenizer, "tokenizer", "", "llama2.c tokenizer.bin, for llama2.c checkpoints")
	fs.StringVar(&m.adapter, "adapter", "", "GPU adapter by index or name substring (default: $FREQKV_ADAPTER, else the best; see 'freqkv devices')")
}

func (m *modelFlags) check() error {
	if m.path == "" && m.tokenizer != "" {
		return usagef("--tokenizer without -m: name the llama2.c checkpoint with -m")
	}
	if m.path != "" {
		if _, err := os.Stat(m.path); err != nil {
			return usagef("model %s: %v", m.path, unwrapPath(err))
		}
	}
	if m.tokenizer != "" {
		if _, err := os.Stat(m.tokenizer); err != nil {
			return usagef("tokenizer %s: %v", m.tokenizer, unwrapPath(err))
		}
	}
	if m.lora != nil {
		return m.lora.check()
	}
	return nil
}

// open reads the model file (GGUF or llama2.c).
func (m *modelFlags) open() (*gguf.File, error) {
	var f *gguf.File
	var err error
	if m.path == "" {
		f, err = builtin.Open()
	} else {
		f, err = llama.Open(m.path, llama.LoadOptions{Tokenizer: m.tokenizer})
	}
	if errors.Is(err, llama.ErrNoTokenizer) {
		return nil, usagef("%v: pass it with --tokenizer tokenizer.bin", err)
	}
	if err != nil {
		return nil, err
	}
	return m.lora.apply(f, m.name())
}

// name is the model as messages show it.
func (m *modelFlags) name() string {
	if m.path == "" {
		return builtin.Name
	}
	return m.path
}

// load opens a device and uploads the model, with a progress bar on a terminal.
func (m *modelFlags) load(quiet bool) (*engine.Device, *llama.Model, error) {
	dev, mdl, _, err := m.loadFile(quiet)
	return dev, mdl, err
}

// loadFile is load that also returns the model file, for its metadata.
func (m *modelFlags) loadFile(quiet bool) (*engine.Device, *llama.Model, *gguf.File, error) {
	f, err := m.open()
	if err != nil {
		return nil, nil, nil, err
	}
	dev, err := engine.Open(engine.Options{Adapter: m.adapter})
	if err != nil {
		return nil, nil, nil, err
	}
	opts := llama.LoadOptions{}
	var bar *progressbar.ProgressBar
	if !quiet && stderrIsTerminal() {
		bar = progressbar.DefaultBytes(-1, "loading "+m.name())
		opts.Progress = func(done, total int64) {
			bar.ChangeMax64(total)
			bar.Set64(done)
		}
	}
	if keys := model.IgnoredKeys(f); len(keys) > 0 && !quiet {
		fmt.Fprintf(os.Stderr, "warning: %s: metadata the engine does not know, ignored: %s\n", m.path, strings.Join(keys, ", "))
	}
	mdl, err := llama.Load(dev, f, opts)
	if bar != nil {
		bar.Finish()
		bar.Clear()
	}
	if err != nil {
		dev.Close()
		return nil, nil, nil, err
	}
	return dev, mdl, f, nil
}

func stderrIsTerminal() bool { return term.IsTerminal(int(os.Stderr.Fd())) }

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
