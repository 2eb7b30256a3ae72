package main

import (
	"fmt"
	"os"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
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
			return usagef("model %s: %v", m.path, err)
		}
	}
	if m.tokenizer != "" {
		if _, err := os.Stat(m.tokenizer); err != nil {
			return usagef("tokenizer %s: %v", m.tokenizer, err)
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
	dev, model, _, err := m.loadFile(quiet)
	return dev, model, err
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
	model, err := llama.Load(dev, f, opts)
	if bar != nil {
		bar.Finish()
		bar.Clear()
	}
	if err != nil {
		dev.Close()
		return nil, nil, nil, err
	}
	return dev, model, f, nil
}

func stderrIsTerminal() bool { return term.IsTerminal(int(os.Stderr.Fd())) }

// cacheFlags choose the KV-cache policy.
type cacheFlags struct {
	policy    string
	size      int
	sink      int
	recent    int
	ratio     float64
	kv        string
	ctx       int
	chunk     int
	fs        *pflag.FlagSet
	ctxFlag   bool
	defPolicy string
}

func (c *cacheFlags) add(fs *pflag.FlagSet, defPolicy string, withCtx bool) {
	c.fs, c.defPolicy = fs, defPolicy
	fs.StringVar(&c.policy, "cache", defPolicy, "KV cache: full, window (StreamingLLM: sinks + recent rows) or freqkv")
	fs.IntVar(&c.size, "cache-size", 0, "cache rows N for window and freqkv (default: the model's trained context)")
	fs.IntVar(&c.sink, "sink", 4, "sink rows S never compressed or evicted")
	fs.IntVar(&c.recent, "recent", 0, "recent rows R kept uncompressed at a compression (freqkv)")
	fs.Float64Var(&c.ratio, "ratio", 0.5, "retaining ratio g of a compression (freqkv)")
	fs.StringVar(&c.kv, "kv", "", "KV storage: f16 or f32 (default f16 where the device has shader-f16, else f32)")
	fs.IntVar(&c.chunk, "batch", 256, "tokens per prefill step")
	if withCtx {
		c.ctxFlag = true
		fs.IntVar(&c.ctx, "ctx", 0, "context of a full cache in tokens (default: the model's trained context)")
	}
}

// options validates the flags against the model's trained context.
func (c *cacheFlags) options(dev *engine.Device, trained int) (llama.CacheOptions, error) {
	o := llama.CacheOptions{Policy: c.policy, Context: c.ctx, MaxChunk: c.chunk}
	switch c.policy {
	case "full", "window", "freqkv":
	default:
		return o, usagef("--cache %q: use full, window or freqkv", c.policy)
	}
	if c.chunk < 1 {
		return o, usagef("--batch %d must be at least 1", c.chunk)
	}
	n := c.size
	if n == 0 {
		n = trained
	}
	o.FreqKV = freqkv.Config{CacheSize: n, Sink: c.sink, Recent: c.recent, Ratio: c.ratio}
	switch c.policy {
	case "freqkv":
		if err := o.FreqKV.Validate(); err != nil {
			return o, usagef("%v", err)
		}
	case "window":
		if c.sink < 0 || c.sink >= n {
			return o, usagef("--sink %d must be in [0, --cache-size %d)", c.sink, n)
		}
	}
	switch c.kv {
	case "":
		o.KV = engine.F32
		if dev.ShaderF16 {
			o.KV = engine.F16
		}
	case "f16":
		o.KV = engine.F16
	case "f32":
		o.KV = engine.F32
	default:
		return o, usagef("--kv %q: use f16 or f32", c.kv)
	}
	return o, nil
}

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
