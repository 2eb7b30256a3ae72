package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/eval"
	"github.com/freqkv/freqkv/internal/outfile"
	"github.com/freqkv/freqkv/kvcache"
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

// evalCaches is a list of caches measured side by side. Each entry is a policy, optionally
// with parameters of its own after colons (freqkv:keep=high:ratio=0.25), so ablations run
// in the same run as the method; the cache flags (--cache-size, --sink, --ratio, --keep...)
// set what entries do not. A full cache is sized to the longest sequence of the run.
type evalCaches struct {
	cf cacheFlags
}

func (e *evalCaches) add(fs *pflag.FlagSet) {
	e.cf.add(fs, "full,window,freqkv", true, "default: the model's trained context")
	fs.Lookup("cache").Usage = "caches to compare in one run, comma-separated: full, window, freqkv, h2o, each optionally with its own parameters after colons, e.g. freqkv:keep=high or freqkv:scale=energy:ratio=0.25 or freqkv:ratios=0.25/0.5/0.75 (size, sink, recent, ratio, keep, scale, ratios, sizes; per-layer lists slash-separated)"
}

// cacheEntry is one --cache item: its name as given, its policy, its own parameters.
type cacheEntry struct {
	name string
	kind kvcache.Kind
	own  map[string]string
}

var entryParams = map[string]kvcache.Param{"size": kvcache.ParamSize, "sink": kvcache.ParamSink, "recent": kvcache.ParamRecent,
	"ratio": kvcache.ParamRatio, "keep": kvcache.ParamKeep, "scale": kvcache.ParamScale,
	"ratios": kvcache.ParamRatios, "sizes": kvcache.ParamSizes}

// entries parses --cache without a device, so bad entries fail before loading.
func (e *evalCaches) entries() ([]cacheEntry, error) {
	var out []cacheEntry
	seen := map[string]bool{}
	for _, item := range strings.Split(e.cf.kinds, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, ":")
		k, err := kvcache.ParseKind(parts[0])
		if err != nil {
			return nil, usagef("--cache %q: a policy is %s", item, kindNames())
		}
		ce := cacheEntry{name: item, kind: k, own: map[string]string{}}
		for _, kv := range parts[1:] {
			key, val, ok := strings.Cut(kv, "=")
			p, known := entryParams[key]
			if !ok || !known {
				return nil, usagef("--cache %q: %q is not NAME=VALUE with NAME one of size, sink, recent, ratio, keep, scale, ratios, sizes", item, kv)
			}
			if !k.Uses(p) {
				return nil, usagef("--cache %q: a %v cache has no %s parameter", item, k, key)
			}
			ce.own[key] = val
		}
		if seen[item] {
			return nil, usagef("--cache lists %s twice", item)
		}
		seen[item] = true
		out = append(out, ce)
	}
	if len(out) == 0 {
		return nil, usagef("--cache is empty: name at least one of %s", kindNames())
	}
	if e.cf.batch < 1 {
		return nil, usagef("--batch %d must be at least 1", e.cf.batch)
	}
	return out, nil
}

type namedCache struct {
	name string
	opts llama.ContextOptions
}

// options returns each entry's context options; a full cache gets fullCtx tokens.
func (e *evalCaches) options(dev *engine.Device, trained, fullCtx int, logits bool) ([]namedCache, error) {
	entries, err := e.entries()
	if err != nil {
		return nil, err
	}
	var out []namedCache
	for _, ce := range entries {
		c := e.cf
		size := trained
		if c.fs.Changed("cache-size") {
			size = c.size
		}
		if ce.kind == kvcache.Full {
			size = fullCtx
		}
		bad := func(key string) error {
			return usagef("--cache %q: %s=%s is not a valid value", ce.name, key, ce.own[key])
		}
		for key, val := range ce.own {
			var err error
			switch key {
			case "size":
				size, err = strconv.Atoi(val)
			case "sink":
				c.sink, err = strconv.Atoi(val)
			case "recent":
				c.recent, err = strconv.Atoi(val)
			case "ratio":
				c.ratio, err = strconv.ParseFloat(val, 64)
			case "keep":
				c.keep = val
			case "scale":
				c.scale = val
			case "ratios": // per layer, slash-separated
				c.ratios = val
			case "sizes":
				c.sizes = val
			}
			if err != nil {
				return nil, bad(key)
			}
		}
		s, err := c.sized(dev, ce.kind, size)
		if err != nil {
			return nil, fmt.Errorf("cache %s: %w", ce.name, err)
		}
		o := c.options(s)
		o.Logits = logits
		out = append(out, namedCache{ce.name, o})
	}
	return out, nil
}

// cacheSize is N as the caches use it (for reports and plots).
func (e *evalCaches) cacheSize(trained int) int {
	if e.cf.fs.Changed("cache-size") {
		return e.cf.size
	}
	return trained
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
func forEachCache(m *llama.Model, ec *evalCaches, caches []namedCache, fn func(nc namedCache, lm eval.LM) error) error {
	for _, nc := range caches {
		ctx, err := m.NewContext(nc.opts)
		if err != nil {
			err = ec.cf.explain(nc.opts.Cache, err)
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

// evalFlags are what every eval command takes besides its own parameters:
// the model and adapter, the caches to compare, a plot and JSON output.
type evalFlags struct {
	mf     modelFlags
	ec     evalCaches
	out    *string
	asJSON *bool
}

func (f *evalFlags) add(fs *pflag.FlagSet, plotHelp string) {
	f.mf.add(fs)
	f.mf.addLoRA(fs)
	f.ec.add(fs)
	f.out = fs.StringP("output", "o", "", plotHelp)
	f.asJSON = fs.Bool("json", false, "print one JSON object")
}

// measureCaches runs one evaluation over units items on every cache in turn, with
// one progress bar across them, and names each result by its cache.
func measureCaches[R any](f *evalFlags, m *llama.Model, caches []namedCache, what string, units int, run func(lm eval.LM, p eval.Progress) (R, error)) ([]eval.Named[R], error) {
	bar, prog := newProgress(*f.asJSON, units*len(caches), what)
	var results []eval.Named[R]
	err := forEachCache(m, &f.ec, caches, func(nc namedCache, lm eval.LM) error {
		r, err := run(lm, prog(len(results)*units))
		results = append(results, eval.Named[R]{Name: nc.name, Result: r})
		return err
	})
	finish(bar)
	return results, err
}

// plot writes the command's PNG, if one was asked for.
func (f *evalFlags) plot(draw func(w io.Writer) error) error {
	if *f.out == "" {
		return nil
	}
	if err := outfile.Write(*f.out, draw); err != nil {
		return fmt.Errorf("plot %s: %w", *f.out, err)
	}
	return nil
}

// cachesJSON lists each cache's name, spec and result fields for --json.
func cachesJSON[R any](results []eval.Named[R], caches []namedCache, fields func(R) map[string]any) []map[string]any {
	var cs []map[string]any
	for i, r := range results {
		c := fields(r.Result)
		c["name"], c["cache"] = r.Name, specJSON(caches[i].opts.Cache)
		cs = append(cs, c)
	}
	return cs
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
