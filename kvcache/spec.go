package kvcache

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
)

// Kind is a cache policy: the rule that decides which rows a cache keeps.
type Kind int

const (
	// Full keeps every token, up to Spec.Size of them, then refuses more (ErrContextFull).
	Full Kind = iota + 1
	// Window is StreamingLLM's: Spec.Sink first tokens plus the most recent ones, Spec.Size in all.
	Window
	// FreqKV keeps Spec.Size rows and compresses the old span in the frequency domain when full.
	FreqKV
	// HeavyHitter keeps Spec.Size rows and, on FreqKV's schedule, evicts the rows of the old
	// span that received the least attention (H2O-style), keeping the sinks, the Recent rows
	// and floor(L*Ratio) heavy hitters per layer and KV head.
	HeavyHitter
)

// kinds lists every Kind in the order help texts name them. A new policy adds itself here,
// to its String, to Spec.Validate and to New.
var kinds = []Kind{Full, Window, FreqKV, HeavyHitter}

// Kinds returns every policy.
func Kinds() []Kind { return append([]Kind(nil), kinds...) }

func (k Kind) String() string {
	switch k {
	case Full:
		return "full"
	case Window:
		return "window"
	case FreqKV:
		return "freqkv"
	case HeavyHitter:
		return "h2o"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for _, k := range kinds {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, &SpecError{Params: []Param{ParamKind}, Msg: fmt.Sprintf("unknown cache policy %q; the policies are %s", s, kindList())}
}

func kindList() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.String()
	}
	return strings.Join(names, ", ")
}

// MarshalText writes a Kind by name (JSON reports).
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Spec is a cache's policy and that policy's parameters: everything a user chooses about a
// cache. The model's shape is the Geometry. A parameter a policy does not use must be zero,
// so a value set for one policy is never silently ignored by another.
//
// Extension points: a new policy adds a Kind and its parameters as fields here (validated in
// Validate, documented with the policies that read them); a per-layer parameter becomes a
// slice beside its scalar.
type Spec struct {
	Kind Kind
	// Size is N, the most rows a layer's cache holds: the context in tokens of a full cache,
	// the rows each query of a window sees (itself included), the rows of a FreqKV cache.
	Size int
	// Sink is S, the first rows kept forever (window, freqkv).
	Sink int
	// Recent is R, the newest rows a compression leaves alone (freqkv).
	Recent int
	// Ratio is g in (0, 1), the share of the compressed span a compression keeps (freqkv).
	Ratio float64
	// Keep and Scale are ablations of FreqKV's compression (freqkv): which DCT coefficients
	// it keeps and how it scales its output; the zero values are the method (freqkv.Keep,
	// freqkv.Scale).
	Keep  freqkv.Keep
	Scale freqkv.Scale
	// Ratios and Sizes are per-layer geometry (freqkv): when set, layer l compresses with
	// ratio Ratios[l] (Ratio must then be 0) and holds Sizes[l] rows (Size must then be
	// their maximum, the rows every layer's storage has); one entry per layer.
	Ratios []float64
	Sizes  []int
	// Storage is the element type of the stored keys, and of the values unless ValueStorage
	// says otherwise: engine.F32, engine.F16, or ggml's engine.Q8_0 or engine.Q4_0 blocks
	// (quant.go: blocks of 32 consecutive channels of a row, quantised on store, dequantised
	// by attention, and by a FreqKV compression, which works in f32 and quantises back).
	Storage engine.DType
	// ValueStorage, when not nil, is the element type of the stored values (nil: Storage).
	ValueStorage *engine.DType
	// Compress is when a FreqKV cache does a compression's work (freqkv): the zero value
	// Spread accumulates it over the steps before; Whole does it in the step that needs it.
	// Either way the cache holds the same rows, up to the order of float32 sums.
	Compress Schedule
}

// KeyType is the element type of the stored keys.
func (s Spec) KeyType() engine.DType { return s.Storage }

// ValueType is the element type of the stored values.
func (s Spec) ValueType() engine.DType {
	if s.ValueStorage != nil {
		return *s.ValueStorage
	}
	return s.Storage
}

// WithValueType is s with its values stored as t (its keys as before).
func (s Spec) WithValueType(t engine.DType) Spec {
	s.ValueStorage = &t
	return s
}

// DefaultSpec is kind's reference geometry for a cache of size rows stored as storage:
// 4 sinks for window and freqkv, no recent rows and half the span kept for freqkv.
func DefaultSpec(kind Kind, size int, storage engine.DType) Spec {
	s := Spec{Kind: kind, Size: size, Storage: storage}
	switch kind {
	case Window:
		s.Sink = 4
	case FreqKV, HeavyHitter:
		c := freqkv.DefaultConfig(size)
		s.Sink, s.Recent, s.Ratio = c.Sink, c.Recent, c.Ratio
	}
	return s
}

// Uses reports whether kind reads parameter p.
func (k Kind) Uses(p Param) bool {
	switch p {
	case ParamKind, ParamSize, ParamStorage, ParamValueStorage:
		return true
	case ParamSink:
		return k == Window || k == FreqKV || k == HeavyHitter
	case ParamRecent, ParamRatio:
		return k == FreqKV || k == HeavyHitter
	case ParamKeep, ParamScale, ParamRatios, ParamSizes:
		return k == FreqKV
	}
	return false
}

// Equal reports whether two specs describe the same cache (Spec holds slices, so == does not
// compile).
func (s Spec) Equal(o Spec) bool { return reflect.DeepEqual(s, o) }

// PerLayer reports whether layers have geometries of their own.
func (s Spec) PerLayer() bool { return len(s.Ratios) > 0 || len(s.Sizes) > 0 }

// LayerFreqKV is layer l's compression geometry (FreqKV() when nothing is per layer).
func (s Spec) LayerFreqKV(l int) freqkv.Config {
	c := s.FreqKV()
	if l < len(s.Ratios) {
		c.Ratio = s.Ratios[l]
	}
	if l < len(s.Sizes) {
		c.CacheSize = s.Sizes[l]
	}
	return c
}

// FreqKV is the compression geometry of a FreqKV spec.
func (s Spec) FreqKV() freqkv.Config {
	return freqkv.Config{CacheSize: s.Size, Sink: s.Sink, Recent: s.Recent, Ratio: s.Ratio, Keep: s.Keep, Scale: s.Scale}
}

// Param names a parameter of a Spec, so that callers can map errors back to where the value
// came from (the CLI maps them to its flags).
type Param string

const (
	ParamKind    Param = "kind"
	ParamSize    Param = "size"
	ParamSink    Param = "sink"
	ParamRecent  Param = "recent"
	ParamRatio   Param = "ratio"
	ParamKeep    Param = "keep"
	ParamScale   Param = "scale"
	ParamRatios  Param = "ratios"
	ParamSizes   Param = "sizes"
	ParamStorage Param = "storage"
	// ParamValueStorage is the values' element type where it differs from the keys'.
	ParamValueStorage Param = "value storage"
)

// Params lists every Param.
func Params() []Param {
	return []Param{ParamKind, ParamSize, ParamSink, ParamRecent, ParamRatio, ParamKeep, ParamScale, ParamRatios, ParamSizes, ParamStorage, ParamValueStorage}
}

// SpecError says why a Spec cannot run, in terms of its parameters.
type SpecError struct {
	Params []Param // the parameters involved; changing one of them fixes it
	Msg    string
}

func (e *SpecError) Error() string { return "kvcache: " + e.Msg }

func specErr(msg string, params ...Param) error { return &SpecError{Params: params, Msg: msg} }

// Validate reports why s cannot run, as a *SpecError.
func (s Spec) Validate() error {
	switch s.Kind {
	case Full, Window, FreqKV, HeavyHitter:
	default:
		return specErr(fmt.Sprintf("unknown cache policy %v; the policies are %s", s.Kind, kindList()), ParamKind)
	}
	if !storable(s.Storage) {
		return specErr(fmt.Sprintf("KV storage %s is not supported; use %s", s.Storage, storageList), ParamStorage)
	}
	if !storable(s.ValueType()) {
		return specErr(fmt.Sprintf("KV value storage %s is not supported; use %s", s.ValueType(), storageList), ParamValueStorage)
	}
	if s.Size < 1 {
		return specErr(fmt.Sprintf("a %v cache of %d rows holds nothing; the size must be at least 1", s.Kind, s.Size), ParamSize)
	}
	// A parameter the policy ignores would change nothing: refuse it rather than pretend.
	for _, u := range []struct {
		p   Param
		set bool
	}{{ParamSink, s.Sink != 0}, {ParamRecent, s.Recent != 0}, {ParamRatio, s.Ratio != 0},
		{ParamKeep, s.Keep != freqkv.KeepLow}, {ParamScale, s.Scale != freqkv.ScaleAmplitude},
		{ParamRatios, len(s.Ratios) > 0}, {ParamSizes, len(s.Sizes) > 0}} {
		if u.set && !s.Kind.Uses(u.p) {
			return specErr(fmt.Sprintf("a %v cache has no %s parameter", s.Kind, u.p), u.p, ParamKind)
		}
	}
	if s.Compress != Spread && s.Kind != FreqKV {
		return specErr(fmt.Sprintf("a %v cache never compresses; only freqkv takes a compression schedule", s.Kind), ParamKind)
	}
	switch s.Kind {
	case Window:
		if s.Sink < 0 {
			return specErr(fmt.Sprintf("window sink %d is negative", s.Sink), ParamSink)
		}
		if s.Sink >= s.Size {
			return specErr(fmt.Sprintf("a window of %d rows keeps none after its %d sinks; the size must exceed the sinks", s.Size, s.Sink), ParamSize, ParamSink)
		}
	case FreqKV, HeavyHitter:
		if s.PerLayer() {
			return s.validatePerLayer()
		}
		return configError(s.FreqKV().Validate(), "")
	}
	return nil
}

// configError turns a freqkv.ConfigError into a SpecError (prefixed by where, e.g. a layer).
func configError(err error, where string) error {
	if err == nil {
		return nil
	}
	var ce *freqkv.ConfigError
	if !errors.As(err, &ce) {
		return fmt.Errorf("kvcache: %w", err)
	}
	e := &SpecError{Msg: where + ce.Msg}
	for _, f := range ce.Fields {
		p := configParam[f]
		if where != "" && p == ParamRatio {
			p = ParamRatios
		}
		if where != "" && p == ParamSize {
			p = ParamSizes
		}
		e.Params = append(e.Params, p)
	}
	return e
}

func (s Spec) validatePerLayer() error {
	if len(s.Ratios) > 0 && s.Ratio != 0 {
		return specErr("per-layer ratios replace the ratio; leave the ratio unset", ParamRatio, ParamRatios)
	}
	if len(s.Ratios) > 0 && len(s.Sizes) > 0 && len(s.Ratios) != len(s.Sizes) {
		return specErr(fmt.Sprintf("%d per-layer ratios but %d per-layer sizes; give one of each per layer", len(s.Ratios), len(s.Sizes)), ParamRatios, ParamSizes)
	}
	if len(s.Sizes) > 0 {
		most := 0
		for _, n := range s.Sizes {
			most = max(most, n)
		}
		if s.Size != most {
			return specErr(fmt.Sprintf("with per-layer sizes the size must be their maximum %d, not %d", most, s.Size), ParamSize, ParamSizes)
		}
	}
	for l := range max(len(s.Ratios), len(s.Sizes)) {
		if err := configError(s.LayerFreqKV(l).Validate(), fmt.Sprintf("layer %d: ", l)); err != nil {
			return err
		}
	}
	return nil
}

// CheckLayers checks the per-layer geometry against a model of n layers.
func (s Spec) CheckLayers(n int) error {
	if len(s.Ratios) > 0 && len(s.Ratios) != n {
		return specErr(fmt.Sprintf("%d per-layer ratios for a model of %d layers; give one per layer", len(s.Ratios), n), ParamRatios)
	}
	if len(s.Sizes) > 0 && len(s.Sizes) != n {
		return specErr(fmt.Sprintf("%d per-layer sizes for a model of %d layers; give one per layer", len(s.Sizes), n), ParamSizes)
	}
	return nil
}

// configParam maps freqkv.Config's fields to the Spec parameters they come from.
var configParam = map[freqkv.Field]Param{
	freqkv.FieldCacheSize: ParamSize,
	freqkv.FieldSink:      ParamSink,
	freqkv.FieldRecent:    ParamRecent,
	freqkv.FieldRatio:     ParamRatio,
	freqkv.FieldKeep:      ParamKeep,
	freqkv.FieldScale:     ParamScale,
}

// ErrContextFull is wrapped by the errors of a full cache that can take no more tokens.
var ErrContextFull = errors.New("context is full")

// DeviceLimitError says a cache's rows do not fit one storage binding of the device, and how
// many would.
type DeviceLimitError struct {
	Spec    Spec
	Rows    int    // physical rows each layer's K (and V) needs
	Bytes   uint64 // bytes of one layer's K
	Limit   uint64 // the device's storage binding limit
	MaxSize int    // the largest Spec.Size that fits (0: none)
}

func (e *DeviceLimitError) Error() string {
	return fmt.Sprintf("kvcache: a %v cache of %d rows needs %d bytes for one layer's %s keys (%d rows), over the device's storage binding limit of %d bytes; at most %d rows fit",
		e.Spec.Kind, e.Spec.Size, e.Bytes, e.Spec.Storage, e.Rows, e.Limit, e.MaxSize)
}

// CheckMethodOnly refuses, as a *SpecError, what only the inference caches implement: the
// h2o policy, FreqKV's ablations (Keep, Scale) and per-layer geometry. Code that implements
// the full, window and FreqKV policies as the method defines them (training) calls it, so
// such a spec is an error there rather than silently run as plain FreqKV.
func (s Spec) CheckMethodOnly() error {
	switch {
	case s.Kind == HeavyHitter:
		return specErr("the h2o policy is implemented for inference only; use full, window or freqkv", ParamKind)
	case s.Keep != freqkv.KeepLow:
		return specErr(fmt.Sprintf("keep %v is an inference-only ablation", s.Keep), ParamKeep)
	case s.Scale != freqkv.ScaleAmplitude:
		return specErr(fmt.Sprintf("scale %v is an inference-only ablation", s.Scale), ParamScale)
	case len(s.Ratios) > 0:
		return specErr("per-layer ratios are implemented for inference only", ParamRatios)
	case len(s.Sizes) > 0:
		return specErr("per-layer sizes are implemented for inference only", ParamSizes)
	}
	return nil
}
