package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/spf13/pflag"
)

// cacheFlags are the KV-cache flags of every command that runs a model with a cache of the
// user's choice. They are the one place flags become a kvcache.Spec, and the one place
// kvcache's and the context's errors are said back in terms of these flags.
type cacheFlags struct {
	fs     *pflag.FlagSet
	many   bool   // --cache takes a comma-separated list (bench)
	kinds  string // --cache
	size   int    // --cache-size
	sink   int    // --sink
	recent int    // --recent
	ratio  float64
	keep   string // --keep
	scale  string // --scale
	ratios string // --ratio-per-layer: comma-separated or @FILE
	sizes  string // --cache-size-per-layer
	kv     string // --kv: keys and values
	kvK    string // --kv-k: keys, over --kv
	kvV    string // --kv-v: values, over --kv
	batch  int
}

// paramFlags names the flag each Spec parameter comes from.
var paramFlags = map[kvcache.Param]string{
	kvcache.ParamKind:    "--cache",
	kvcache.ParamSize:    "--cache-size",
	kvcache.ParamSink:    "--sink",
	kvcache.ParamRecent:  "--recent",
	kvcache.ParamRatio:   "--ratio",
	kvcache.ParamKeep:    "--keep",
	kvcache.ParamScale:   "--scale",
	kvcache.ParamRatios:  "--ratio-per-layer",
	kvcache.ParamSizes:   "--cache-size-per-layer",
	kvcache.ParamStorage: "--kv",
	// values: --kv-v when given, else --kv (storageFlag)
	kvcache.ParamValueStorage: "--kv-v",
}

// storageFlag is the flag the keys' (ParamStorage) or values' (ParamValueStorage) type came
// from: --kv-k or --kv-v when given, else --kv.
func (c *cacheFlags) storageFlag(p kvcache.Param) string {
	if p == kvcache.ParamStorage && c.fs != nil && c.fs.Changed("kv-k") {
		return "--kv-k"
	}
	if p == kvcache.ParamValueStorage && (c.fs == nil || !c.fs.Changed("kv-v")) {
		return "--kv"
	}
	return paramFlags[p]
}

// kindNames is "full, window or freqkv".
func kindNames() string {
	var names []string
	for _, k := range kvcache.Kinds() {
		names = append(names, k.String())
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// add registers the flags. def is the default of --cache (one policy, or a list when many);
// sizeHelp says what --cache-size defaults to for this command.
func (c *cacheFlags) add(fs *pflag.FlagSet, def string, many bool, sizeHelp string) {
	c.fs, c.many = fs, many
	d := kvcache.DefaultSpec(kvcache.FreqKV, 1, engine.F16)
	if many {
		fs.StringVar(&c.kinds, "cache", def, "cache policies to compare, comma-separated, of "+kindNames())
	} else {
		fs.StringVar(&c.kinds, "cache", def, "KV cache policy: full (every token), window (StreamingLLM: sinks + most recent rows), freqkv, or h2o (heavy-hitter eviction on freqkv's schedule)")
	}
	fs.IntVar(&c.size, "cache-size", 0, "cache rows N: a full cache's context in tokens, the rows a window query sees, a freqkv cache's rows ("+sizeHelp+")")
	fs.IntVar(&c.sink, "sink", d.Sink, "sink rows S kept forever (window, freqkv, h2o)")
	fs.IntVar(&c.recent, "recent", d.Recent, "recent rows R a compression or eviction leaves alone (freqkv, h2o)")
	fs.Float64Var(&c.ratio, "ratio", d.Ratio, "retaining ratio g in (0, 1): the share of the old span a compression keeps (freqkv; h2o: the share of its rows an eviction keeps)")
	fs.StringVar(&c.keep, "keep", d.Keep.String(), "ablation (freqkv): keep the low (the method) or the high DCT frequencies of a span")
	fs.StringVar(&c.scale, "scale", d.Scale.String(), "ablation (freqkv): scale a compression's output by sqrt(m/L) (amplitude: keeps the mean, the method) or 1 (energy: keeps the kept coefficients' energy)")
	fs.StringVar(&c.ratios, "ratio-per-layer", "", "per-layer retaining ratios (freqkv), one per layer: 0.25,0.5,... or @FILE of numbers; replaces --ratio")
	fs.StringVar(&c.sizes, "cache-size-per-layer", "", "per-layer cache rows (freqkv), one per layer: 256,512,... or @FILE; storage holds the largest in every layer")
	fs.StringVar(&c.kv, "kv", "", "KV storage: f16, f32, q8_0 or q4_0 (ggml blocks of 32 channels of a row: 1.9x or 3.6x smaller than f16; default f16 where the device has shader-f16, else f32)")
	fs.StringVar(&c.kvK, "kv-k", "", "keys' storage, over --kv: f16, f32, q8_0 or q4_0")
	fs.StringVar(&c.kvV, "kv-v", "", "values' storage, over --kv: f16, f32, q8_0 or q4_0")
	fs.IntVar(&c.batch, "batch", 256, "tokens per prefill step")
}

// policies parses --cache and refuses a parameter flag that none of the chosen policies reads.
func (c *cacheFlags) policies() ([]kvcache.Kind, error) {
	var out []kvcache.Kind
	names := []string{c.kinds}
	if c.many {
		names = strings.Split(c.kinds, ",")
	}
	for _, n := range names {
		k, err := kvcache.ParseKind(strings.TrimSpace(n))
		if err != nil {
			return nil, usagef("--cache %q: use %s", n, kindNames())
		}
		out = append(out, k)
	}
	for _, p := range []kvcache.Param{kvcache.ParamSink, kvcache.ParamRecent, kvcache.ParamRatio, kvcache.ParamKeep, kvcache.ParamScale, kvcache.ParamRatios, kvcache.ParamSizes} {
		if !c.fs.Changed(strings.TrimPrefix(paramFlags[p], "--")) {
			continue
		}
		used := false
		for _, k := range out {
			used = used || k.Uses(p)
		}
		if !used {
			var by []string
			for _, k := range kvcache.Kinds() {
				if k.Uses(p) {
					by = append(by, k.String())
				}
			}
			return nil, usagef("%s applies to --cache %s, not %s", paramFlags[p], strings.Join(by, " or "), c.kinds)
		}
	}
	if c.batch < 1 {
		return nil, usagef("--batch %d must be at least 1", c.batch)
	}
	return out, nil
}

// storage is the KV element type --kv asks for on dev.
func storage(dev *engine.Device, kv string) (engine.DType, error) {
	return storageOf(dev, "--kv", kv)
}

// storageOf is the KV element type flag's value kv asks for on dev.
func storageOf(dev *engine.Device, flag, kv string) (engine.DType, error) {
	switch kv {
	case "":
		if dev.ShaderF16 {
			return engine.F16, nil
		}
		return engine.F32, nil
	case "f16":
		return engine.F16, nil
	case "f32":
		return engine.F32, nil
	case "q8_0":
		return engine.Q8_0, nil
	case "q4_0":
		return engine.Q4_0, nil
	}
	return 0, usagef("%s %q: use f16, f32, q8_0 or q4_0", flag, kv)
}

// storages is the keys' and values' types the flags ask for on dev.
func (c *cacheFlags) storages(dev *engine.Device) (k, v engine.DType, err error) {
	both, err := storageOf(dev, "--kv", c.kv)
	if err != nil {
		return 0, 0, err
	}
	k, v = both, both
	if c.kvK != "" {
		if k, err = storageOf(dev, "--kv-k", c.kvK); err != nil {
			return 0, 0, err
		}
	}
	if c.kvV != "" {
		if v, err = storageOf(dev, "--kv-v", c.kvV); err != nil {
			return 0, 0, err
		}
	}
	return k, v, nil
}

// spec is the cache of kind the flags describe: --cache-size when given, else defSize.
// The parameters kind does not read stay zero.
func (c *cacheFlags) spec(dev *engine.Device, kind kvcache.Kind, defSize int) (kvcache.Spec, error) {
	if c.fs.Changed("cache-size") {
		defSize = c.size
	}
	return c.sized(dev, kind, defSize)
}

// sized is the cache of kind and size the flags describe, whatever --cache-size says (bench
// sizes its full caches to what it measures).
func (c *cacheFlags) sized(dev *engine.Device, kind kvcache.Kind, size int) (kvcache.Spec, error) {
	kt, vt, err := c.storages(dev)
	if err != nil {
		return kvcache.Spec{}, err
	}
	s := kvcache.Spec{Kind: kind, Size: size, Storage: kt}
	if vt != kt {
		s = s.WithValueType(vt)
	}
	if kind.Uses(kvcache.ParamSink) {
		s.Sink = c.sink
	}
	if kind.Uses(kvcache.ParamRecent) {
		s.Recent = c.recent
	}
	if kind.Uses(kvcache.ParamRatio) {
		s.Ratio = c.ratio
	}
	if kind.Uses(kvcache.ParamKeep) {
		if s.Keep, err = freqkv.ParseKeep(c.keep); err != nil {
			return s, usagef("--keep %q: use low or high", c.keep)
		}
	}
	if kind.Uses(kvcache.ParamScale) {
		if s.Scale, err = freqkv.ParseScale(c.scale); err != nil {
			return s, usagef("--scale %q: use amplitude or energy", c.scale)
		}
	}
	if kind.Uses(kvcache.ParamRatios) && c.ratios != "" {
		if s.Ratios, err = perLayer("--ratio-per-layer", c.ratios, func(v string) (float64, error) { return strconv.ParseFloat(v, 64) }); err != nil {
			return s, err
		}
		s.Ratio = 0
	}
	if kind.Uses(kvcache.ParamSizes) && c.sizes != "" {
		if s.Sizes, err = perLayer("--cache-size-per-layer", c.sizes, strconv.Atoi); err != nil {
			return s, err
		}
		s.Size = slices.Max(s.Sizes)
	}
	if err := s.Validate(); err != nil {
		return s, c.explain(s, err)
	}
	return s, nil
}

// perLayer parses a per-layer list: values separated by commas, slashes or white space,
// or @FILE holding them.
func perLayer[T any](flag, v string, parse func(string) (T, error)) ([]T, error) {
	text := v
	if name, ok := strings.CutPrefix(v, "@"); ok {
		b, err := readInput(flag, name, defaultMaxInput)
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	var out []T
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '/' || unicode.IsSpace(r) }) {
		x, err := parse(f)
		if err != nil {
			return nil, usagef("%s: %q is not a number", flag, f)
		}
		out = append(out, x)
	}
	if len(out) == 0 {
		return nil, usagef("%s %q lists no values; give one per layer", flag, v)
	}
	return out, nil
}

// options is what a context with the cache s needs.
func (c *cacheFlags) options(s kvcache.Spec) llama.ContextOptions {
	return llama.ContextOptions{Cache: s, MaxChunk: c.batch}
}

// newContext makes a context, with its errors said in flags.
func (c *cacheFlags) newContext(m *llama.Model, opts llama.ContextOptions) (*llama.Context, error) {
	ctx, err := m.NewContext(opts)
	if err != nil {
		return nil, c.explain(opts.Cache, err)
	}
	return ctx, nil
}

// value is the flag value behind a Spec parameter, as the user would type it.
func value(s kvcache.Spec, p kvcache.Param) string {
	switch p {
	case kvcache.ParamKind:
		return s.Kind.String()
	case kvcache.ParamSize:
		return fmt.Sprint(s.Size)
	case kvcache.ParamSink:
		return fmt.Sprint(s.Sink)
	case kvcache.ParamRecent:
		return fmt.Sprint(s.Recent)
	case kvcache.ParamRatio:
		return fmt.Sprint(s.Ratio)
	case kvcache.ParamKeep:
		return s.Keep.String()
	case kvcache.ParamScale:
		return s.Scale.String()
	case kvcache.ParamRatios:
		return fmt.Sprint(s.Ratios)
	case kvcache.ParamSizes:
		return fmt.Sprint(s.Sizes)
	case kvcache.ParamStorage:
		return s.KeyType().String()
	case kvcache.ParamValueStorage:
		return s.ValueType().String()
	}
	return "?"
}

// explain says a cache or context error in terms of the flags that set the cache s; other
// errors pass through.
func (c *cacheFlags) explain(s kvcache.Spec, err error) error {
	var se *kvcache.SpecError
	var le *kvcache.DeviceLimitError
	var ce *llama.ChunkTooLargeError
	switch {
	case errors.As(err, &se):
		var flags []string
		for _, p := range se.Params {
			flags = append(flags, c.storageFlag(p)+" "+value(s, p))
		}
		return usagef("%s: %s", strings.Join(flags, ", "), se.Msg)
	case errors.As(err, &le):
		hint := ""
		switch le.Spec.Storage {
		case engine.F32:
			hint = " (--kv f16 fits twice as many, --kv q8_0 3.8 times)"
		case engine.F16:
			hint = " (--kv q8_0 fits 1.9 times as many, --kv q4_0 3.6 times)"
		}
		return usagef("--cache-size %d: one layer's keys of a %v cache take %s, over this device's storage binding limit of %s; the most that fits is --cache-size %d%s",
			le.Spec.Size, le.Spec.Kind, humanBytes(int64(le.Bytes)), humanBytes(int64(le.Limit)), le.MaxSize, hint)
	case errors.As(err, &ce):
		return usagef("--batch %d: a prefill step's activations would exceed this device's storage binding limit of %s; the most that fits is --batch %d",
			ce.Chunk, humanBytes(int64(ce.Limit)), ce.Max)
	case errors.Is(err, kvcache.ErrContextFull):
		return fmt.Errorf("%w; raise --cache-size (now %d) or use --cache freqkv or --cache window, which take any length", err, s.Size)
	case errors.Is(err, engine.ErrNoShaderF16) && (s.KeyType() == engine.F16 || s.ValueType() == engine.F16):
		return usagef("%v; use --kv f32 or --kv q8_0", err)
	}
	return err
}

// specJSON is a cache spec for --json output: the policy, its size and storage, and only
// the parameters the policy reads.
func specJSON(s kvcache.Spec) map[string]any {
	out := map[string]any{"policy": s.Kind.String(), "size": s.Size, "kv": kvName(s)}
	if s.Kind.Uses(kvcache.ParamSink) {
		out["sink"] = s.Sink
	}
	if s.Kind.Uses(kvcache.ParamRecent) {
		out["recent"] = s.Recent
	}
	if s.Kind.Uses(kvcache.ParamRatio) {
		out["ratio"] = s.Ratio
	}
	if s.Kind.Uses(kvcache.ParamKeep) {
		out["keep"], out["scale"] = s.Keep.String(), s.Scale.String()
	}
	if len(s.Ratios) > 0 {
		out["ratio_per_layer"] = s.Ratios
	}
	if len(s.Sizes) > 0 {
		out["size_per_layer"] = s.Sizes
	}
	return out
}

// kvName is the storage of a spec: one type, or keys/values ("q8_0/f16") when they differ.
func kvName(s kvcache.Spec) string {
	if s.KeyType() == s.ValueType() {
		return s.KeyType().String()
	}
	return s.KeyType().String() + "/" + s.ValueType().String()
}

// describe is a one-line summary of a cache spec: its policy, size and parameters.
func describe(s kvcache.Spec) string {
	out := fmt.Sprintf("%v N=%d", s.Kind, s.Size)
	if s.Kind.Uses(kvcache.ParamSink) {
		out += fmt.Sprintf(" S=%d", s.Sink)
	}
	if s.Kind.Uses(kvcache.ParamRecent) {
		out += fmt.Sprintf(" R=%d", s.Recent)
	}
	if s.Kind.Uses(kvcache.ParamRatio) {
		out += fmt.Sprintf(" g=%g", s.Ratio)
	}
	if s.Keep != freqkv.KeepLow {
		out += " keep=" + s.Keep.String()
	}
	if s.Scale != freqkv.ScaleAmplitude {
		out += " scale=" + s.Scale.String()
	}
	if len(s.Ratios) > 0 {
		out += fmt.Sprintf(" g/layer=%v", s.Ratios)
	}
	if len(s.Sizes) > 0 {
		out += fmt.Sprintf(" N/layer=%v", s.Sizes)
	}
	return out
}
