package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/eval"
	"github.com/freqkv/freqkv/internal/outfile"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
)

func init() {
	register(command{name: "eval", summary: "long-context evaluations: passkey, repeat, ppl-curve (several caches in one run)", run: runEval})
}

var evalCommands = []struct {
	name, summary string
	run           func([]string) error
}{
	{"passkey", "needle in a haystack: a pass key at a depth of filler, greedy answer, accuracy grid", runPasskey},
	{"repeat", "repeat-after-gap: NLL of a segment seen again after a gap vs never seen", runRepeat},
	{"ppl-curve", "mean NLL per position bucket over many windows", runCurve},
}

func runEval(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(os.Stderr, "Usage: freqkv eval EVALUATION [flags]\n\nEvaluations (every one measures each --cache in the same run):\n")
		for _, c := range evalCommands {
			fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
		}
		fmt.Fprintf(os.Stderr, "\nRun 'freqkv eval EVALUATION --help' for its flags.\n")
		if len(args) == 0 {
			return usagef("name an evaluation: passkey, repeat or ppl-curve")
		}
		return pflag.ErrHelp
	}
	if strings.HasPrefix(args[0], "-") {
		return usagef("name an evaluation before the flags: freqkv eval passkey|repeat|ppl-curve [flags]")
	}
	for _, c := range evalCommands {
		if c.name == args[0] {
			return c.run(args[1:])
		}
	}
	return usagef("unknown evaluation %q: use passkey, repeat or ppl-curve", args[0])
}

// evalCaches is a list of cache policies measured side by side, sharing the
// geometry flags (N, S, R, g, KV type).
type evalCaches struct {
	cf   cacheFlags
	list string
}

func (e *evalCaches) add(fs *pflag.FlagSet) {
	e.cf.add(fs, "full,window,freqkv", false)
	fs.Lookup("cache").Usage = "comma-separated cache policies, each measured in the same run: full, window, freqkv"
	fs.Lookup("cache-size").Usage = "cache rows N for window and freqkv (default: the model's trained context)"
}

// names parses --cache without a device, so bad names fail before loading.
func (e *evalCaches) names() ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range strings.Split(e.cf.policy, ",") {
		p = strings.TrimSpace(p)
		switch p {
		case "full", "window", "freqkv":
		case "":
			continue
		default:
			return nil, usagef("--cache %q: use a comma-separated list of full, window and freqkv", p)
		}
		if seen[p] {
			return nil, usagef("--cache lists %s twice", p)
		}
		seen[p] = true
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, usagef("--cache is empty: name at least one of full, window, freqkv")
	}
	return out, nil
}

type namedCache struct {
	name string
	opts llama.CacheOptions
}

// options returns each policy's options; a full cache gets fullCtx tokens.
func (e *evalCaches) options(dev *engine.Device, trained, fullCtx int, logits bool) ([]namedCache, error) {
	names, err := e.names()
	if err != nil {
		return nil, err
	}
	var out []namedCache
	for _, n := range names {
		c := e.cf
		c.policy, c.ctx = n, fullCtx
		o, err := c.options(dev, trained)
		if err != nil {
			return nil, err
		}
		o.Logits = logits
		out = append(out, namedCache{n, o})
	}
	return out, nil
}

// cacheSize is N as the caches use it (for reports and plots).
func (e *evalCaches) cacheSize(trained int) int {
	if e.cf.size > 0 {
		return e.cf.size
	}
	return trained
}

// cacheJSON describes a cache for --json output.
func cacheJSON(o llama.CacheOptions) map[string]any {
	m := map[string]any{"policy": o.Policy, "kv": o.KV.String()}
	switch o.Policy {
	case "full":
		m["context"] = o.Context
	case "window":
		m["size"], m["sink"] = o.FreqKV.CacheSize, o.FreqKV.Sink
	default:
		m["size"], m["sink"], m["recent"], m["ratio"] = o.FreqKV.CacheSize, o.FreqKV.Sink, o.FreqKV.Recent, o.FreqKV.Ratio
	}
	return m
}

// contextLM drives a llama.Context for the evaluations.
type contextLM struct{ ctx *llama.Context }

func (c contextLM) Reset() { c.ctx.Reset() }
func (c contextLM) NLL(tokens, targets []int32) ([]float64, error) {
	return c.ctx.NLL(tokens, targets)
}
func (c contextLM) Greedy(prompt []int32, n int) ([]int32, error) {
	var out []int32
	_, err := c.ctx.Generate(prompt, n, &llama.Sampler{}, true, func(t int32) bool {
		out = append(out, t)
		return true
	})
	return out, err
}

// forEachCache creates each cache's context in turn (one at a time, to bound
// memory) and runs fn on it.
func forEachCache(m *llama.Model, caches []namedCache, fn func(nc namedCache, lm eval.LM) error) error {
	for _, nc := range caches {
		ctx, err := m.NewContext(nc.opts)
		if err != nil {
			return fmt.Errorf("cache %s: %w", nc.name, err)
		}
		err = fn(nc, contextLM{ctx})
		ctx.Release()
		if err != nil {
			return fmt.Errorf("cache %s: %w", nc.name, err)
		}
	}
	return nil
}

// progress returns a bar over total units on a terminal (nil otherwise) and
// a callback for the evaluations that advances it across caches.
func newProgress(quiet bool, total int, what string) (*progressbar.ProgressBar, func(base int) eval.Progress) {
	if quiet || !stderrIsTerminal() {
		return nil, func(int) eval.Progress { return nil }
	}
	bar := progressbar.Default(int64(total), what)
	return bar, func(base int) eval.Progress {
		return func(done int) { bar.Set(base + done) }
	}
}

func finish(bar *progressbar.ProgressBar) {
	if bar != nil {
		bar.Finish()
		bar.Clear()
	}
}

func intList(flag, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, usagef("--%s: %q is not an integer", flag, f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, usagef("--%s is empty", flag)
	}
	return out, nil
}

func parseFloats(flag, s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, usagef("--%s: %q is not a number", flag, f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, usagef("--%s is empty", flag)
	}
	return out, nil
}

// checkPlotPath fails early on an output the plot could not or must not
// be written to (one of the inputs, say).
func checkPlotPath(path string, inputs []outfile.Named) error {
	if path == "" {
		return nil
	}
	if !strings.HasSuffix(strings.ToLower(path), ".png") {
		return usagef("-o %s: the plot is a PNG; name a .png file", path)
	}
	if err := outfile.Check([]outfile.Named{{Name: "-o", Path: path}}, inputs); err != nil {
		return usagef("%v", err)
	}
	return nil
}
