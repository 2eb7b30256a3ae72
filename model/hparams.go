// Package model holds what every model implementation shares: hyper-
// parameters and their validation against a file's tensors.
package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama2c"
)

// HParams are the hyper-parameters of a LLaMA-family transformer.
type HParams struct {
	Arch          string // GGUF architecture: "llama", "qwen2", "qwen3", "phi3", "gemma2" or "gemma3"
	ContextLength int    // positions the model was trained for (as the file states)
	Dim           int    // embedding width
	Layers        int
	FFN           int // feed-forward hidden width
	Heads         int // query heads
	KVHeads       int // key/value heads; Heads/KVHeads queries share one
	RopeDim       int // leading dimensions of each head that RoPE rotates
	RopeBase      float64
	RopeScaling   string  // "none", "linear" or "yarn"
	RopeScale     float64 // scaling factor: positions are divided by it (linear, yarn); 1 for none
	RMSEps        float64
	Vocab         int  // rows of the embedding and of the logits
	TiedOutput    bool // the output classifier is the token embedding
	RopeNeoX      bool // RoPE rotates (x[i], x[i+d/2]) (qwen2) rather than adjacent pairs (llama)

	// HeadWidth is attention.key_length where it differs from Dim/Heads
	// (qwen3); 0 means Dim/Heads.
	HeadWidth int `json:",omitempty"`
	// RopeFactors: the file has rope_freqs.weight, RopeDim/2 factors that
	// divide each pair's frequency (Llama 3's "llama3" rope type).
	RopeFactors bool `json:",omitempty"`
	// LongRope: phi3's longrope, rope_factors_short.weight and
	// rope_factors_long.weight: RopeDim/2 divisors of each pair's frequency,
	// the long ones for contexts beyond LongRopeContext positions.
	LongRope        bool `json:",omitempty"`
	LongRopeContext int  `json:",omitempty"`
	// RopeAttnFactor is rope.scaling.attn_factor: cos and sin are scaled by
	// it, for every rope type, as llama.cpp does (0 means 1).
	RopeAttnFactor float64 `json:",omitempty"`
	// Yarn holds YaRN's parameters when RopeScaling is "yarn".
	Yarn Yarn `json:",omitempty"`
	// QKNorm: queries and keys are RMS-normalised per head, with their own
	// weights, before RoPE (qwen3).
	QKNorm bool `json:",omitempty"`
	// SlidingWindow, if positive, is the attention window of every layer:
	// a query sees itself and the SlidingWindow-1 tokens before it (Mistral).
	SlidingWindow int `json:",omitempty"`
	// FusedQKV: each layer's queries, keys and values come from one matrix,
	// attn_qkv, whose rows are Q's, then K's, then V's (phi3).
	FusedQKV bool `json:",omitempty"`
	// FusedGateUp: ffn_up holds the gate's rows, then the up projection's,
	// and there is no ffn_gate (phi3).
	FusedGateUp bool `json:",omitempty"`

	// Gemma 2: the embedding is scaled by sqrt(Dim), the feed-forward gate
	// is GELU (tanh approximation), the attention output and the
	// feed-forward output are RMS-normalised (post_attention_norm,
	// post_ffw_norm) before they join the residual stream.
	EmbedScale bool `json:",omitempty"`
	GELU       bool `json:",omitempty"`
	PostNorms  bool `json:",omitempty"`
	// AttnSoftcap and FinalSoftcap, if positive, cap attention scores
	// (after scaling) and logits as c*tanh(x/c) (Gemma 2).
	AttnSoftcap  float64 `json:",omitempty"`
	FinalSoftcap float64 `json:",omitempty"`
	// QueryScale multiplies queries before the dot product; 0 means
	// 1/sqrt(HeadDim()). Gemma 2 27B's is 1/sqrt(Dim/Heads), as llama.cpp
	// decides by its layer count (the GGUF does not store it).
	QueryScale float64 `json:",omitempty"`
	// WindowPattern, with SlidingWindow, says which layers have the window:
	// 0, every layer (Mistral); n > 0, layer i when i%n < n-1 (Gemma 2: 2,
	// the even layers), the others attending globally.
	WindowPattern int `json:",omitempty"`
	// LocalRopeBase, if positive, is the rope base of the sliding-window
	// layers, which rotate without scaling (Gemma 3: 10000, while the global
	// layers use RopeBase and the file's scaling).
	LocalRopeBase float64 `json:",omitempty"`
}

// LayerRope returns the hyper-parameters layer i rotates with: h itself, or
// for a local layer of a model with its own local rope base, that base
// without scaling (llama.cpp's freq_base_swa and freq_scale_swa = 1).
func (h HParams) LayerRope(i int) HParams {
	if h.LocalRopeBase == 0 || !h.LocalLayer(i) {
		return h
	}
	h.RopeBase, h.RopeScaling, h.RopeScale, h.Yarn = h.LocalRopeBase, "none", 1, Yarn{}
	return h
}

// LocalLayer reports whether layer i attends through the sliding window.
func (h HParams) LocalLayer(i int) bool {
	if h.SlidingWindow == 0 {
		return false
	}
	if h.WindowPattern == 0 {
		return true
	}
	return i%h.WindowPattern < h.WindowPattern-1
}

// AttentionScale is the factor queries are multiplied by before the dot product.
func (h HParams) AttentionScale() float64 {
	if h.QueryScale > 0 {
		return h.QueryScale
	}
	return 1 / math.Sqrt(float64(h.HeadDim()))
}

// Yarn is YaRN rope scaling as llama.cpp applies it (ggml's rope_yarn).
type Yarn struct {
	OrigContext int     // context the rope was trained on before scaling
	ExtFactor   float64 // mix of extrapolated frequencies; llama.cpp's default 1
	AttnFactor  float64 // extra magnitude factor on cos and sin; default 1
	BetaFast    float64 // rotations below which pairs are interpolated; default 32
	BetaSlow    float64 // rotations above which pairs are extrapolated; default 1
}

// HeadDim returns the width of one attention head.
func (h HParams) HeadDim() int {
	if h.HeadWidth > 0 {
		return h.HeadWidth
	}
	return h.Dim / h.Heads
}

// RopeType names how positions turn into angles: "none" (plain RoPE),
// "linear", "yarn", "llama3" (rope_freqs.weight factors) or "longrope".
func (h HParams) RopeType() string {
	if h.LongRope {
		return "longrope"
	}
	if h.RopeFactors {
		return "llama3"
	}
	return h.RopeScaling
}

// KVDim returns the width of one position's keys (or values).
func (h HParams) KVDim() int { return h.KVHeads * h.HeadDim() }

// maxSize bounds every size so that products of a few of them stay far
// from overflow and a corrupt file cannot request absurd allocations.
const maxSize = 1 << 24

// Validate checks that the hyper-parameters describe a model this project
// can run.
func (h HParams) Validate() error {
	if _, ok := architectures[h.Arch]; !ok {
		return fmt.Errorf("model: unsupported architecture %q", h.Arch)
	}
	for _, s := range []struct {
		name string
		v    int
	}{
		{"context length", h.ContextLength}, {"embedding width", h.Dim}, {"layer count", h.Layers},
		{"feed-forward width", h.FFN}, {"head count", h.Heads}, {"kv head count", h.KVHeads},
		{"rope dimension", h.RopeDim}, {"vocabulary size", h.Vocab}, {"head width", h.HeadDim()},
	} {
		if s.v <= 0 || s.v > maxSize {
			return fmt.Errorf("model: %s %d is outside 1..%d", s.name, s.v, maxSize)
		}
	}
	if h.HeadWidth == 0 && h.Dim%h.Heads != 0 {
		return fmt.Errorf("model: head count %d does not divide embedding width %d", h.Heads, h.Dim)
	}
	if h.Heads%h.KVHeads != 0 {
		return fmt.Errorf("model: kv head count %d does not divide head count %d", h.KVHeads, h.Heads)
	}
	if h.RopeDim > h.HeadDim() || h.RopeDim%2 != 0 {
		return fmt.Errorf("model: rope dimension %d must be even and at most the head width %d", h.RopeDim, h.HeadDim())
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"rope base", h.RopeBase}, {"rope scale", h.RopeScale}, {"rms epsilon", h.RMSEps}} {
		if !(f.v > 0) || math.IsInf(f.v, 0) {
			return fmt.Errorf("model: %s %v is not a positive number", f.name, f.v)
		}
	}
	switch h.RopeScaling {
	case "none":
		if h.RopeScale != 1 {
			return fmt.Errorf("model: rope scale %v without rope scaling", h.RopeScale)
		}
	case "linear":
	case "yarn":
		if err := h.Yarn.validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("model: unsupported rope scaling %q", h.RopeScaling)
	}
	if !(h.RopeAttnFactor >= 0) || math.IsInf(h.RopeAttnFactor, 0) {
		return fmt.Errorf("model: rope attention factor %v is not a finite non-negative number", h.RopeAttnFactor)
	}
	if h.LongRope && (h.LongRopeContext <= 0 || h.LongRopeContext > maxSize) {
		return fmt.Errorf("model: longrope original context %d is outside 1..%d", h.LongRopeContext, maxSize)
	}
	if h.SlidingWindow < 0 || h.WindowPattern < 0 {
		return fmt.Errorf("model: sliding window %d or its layer pattern %d is negative", h.SlidingWindow, h.WindowPattern)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"attention softcap", h.AttnSoftcap}, {"final softcap", h.FinalSoftcap}, {"query scale", h.QueryScale}, {"local rope base", h.LocalRopeBase}} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			return fmt.Errorf("model: %s %v is not a finite non-negative number", f.name, f.v)
		}
	}
	return nil
}

func (y Yarn) validate() error {
	if y.OrigContext <= 0 || y.OrigContext > maxSize {
		return fmt.Errorf("model: yarn original context %d is outside 1..%d", y.OrigContext, maxSize)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"ext factor", y.ExtFactor}, {"attn factor", y.AttnFactor}, {"beta fast", y.BetaFast}, {"beta slow", y.BetaSlow}} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			return fmt.Errorf("model: yarn %s %v is not a finite non-negative number", f.name, f.v)
		}
	}
	return nil
}

// architecture holds what differs between the supported architectures.
type architecture struct {
	ropeNeoX    bool
	biases      bool // attn_q, attn_k and attn_v have biases
	qkNorm      bool // attn_q_norm and attn_k_norm, per head, before RoPE
	ropeFactors bool // may have rope_freqs.weight (llama.cpp loads it for these only)
	fusedGateUp bool // ffn_up holds gate and up; attn_qkv may fuse Q, K and V
	longRope    bool // may have rope_factors_long/short
	// ignoresWindow: llama.cpp ignores attention.sliding_window (with a
	// warning) for this architecture, and so does the engine.
	ignoresWindow bool
	// gemma2: embedding scale, GELU gating, post-norms, softcaps, the
	// sliding window on even layers; its softcap keys are read, not refused.
	gemma2 bool
	// gemma3: Gemma 2's blocks without softcaps, with Q/K norms, a global
	// layer every 6th and a rope base of its own on the local layers.
	gemma3 bool
}

var architectures = map[string]architecture{
	"llama":  {ropeFactors: true},
	"qwen2":  {ropeNeoX: true, biases: true},
	"qwen3":  {ropeNeoX: true, qkNorm: true},
	"phi3":   {ropeNeoX: true, fusedGateUp: true, ignoresWindow: true, longRope: true},
	"gemma2": {ropeNeoX: true, gemma2: true},
	"gemma3": {ropeNeoX: true, qkNorm: true, gemma3: true},
}

// gemma3Keys are the math keys gemma3 reads rather than refuses.
var gemma3Keys = map[string]bool{"rope.freq_base_swa": true}

// gemma2Keys are the math keys gemma2 reads rather than refuses.
var gemma2Keys = map[string]bool{"attention.logit_softcapping": true, "final_logit_softcapping": true}

// defaultRopeBase is llama.cpp's rope.freq_base when a file omits it.
const defaultRopeBase = 10000

// HParamsFromGGUF reads the hyper-parameters of a llama, qwen2 or qwen3 GGUF
// file. Metadata that would change the computation and that the engine does
// not implement is an error naming the key.
func HParamsFromGGUF(f *gguf.File) (HParams, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return HParams{}, fmt.Errorf("model: %w", err)
	}
	a, ok := architectures[arch]
	if !ok {
		return HParams{}, fmt.Errorf("model: unsupported architecture %q", arch)
	}
	r := reader{f: f, prefix: arch + "."}
	h := HParams{
		Arch:          arch,
		ContextLength: r.size("context_length"),
		Dim:           r.size("embedding_length"),
		Layers:        r.size("block_count"),
		FFN:           r.size("feed_forward_length"),
		Heads:         r.size("attention.head_count"),
		RMSEps:        r.float("attention.layer_norm_rms_epsilon"),
		RopeNeoX:      a.ropeNeoX,
		QKNorm:        a.qkNorm,
	}
	h.KVHeads = r.optionalSize("attention.head_count_kv", h.Heads)
	if h.Heads > 0 {
		if r.has("attention.key_length") {
			// qwen3: heads*head width need not be the embedding width
			h.HeadWidth = r.size("attention.key_length")
		}
		if v := r.optionalSize("attention.value_length", h.HeadDim()); v != h.HeadDim() {
			r.fail(fmt.Errorf("model: key %q: value width %d differs from key width %d (unsupported)", r.prefix+"attention.value_length", v, h.HeadDim()))
		}
		h.RopeDim = r.optionalSize("rope.dimension_count", h.HeadDim())
	}
	h.RopeBase = r.optionalFloat("rope.freq_base", defaultRopeBase)
	h.RopeScaling, h.RopeScale = r.ropeScaling()
	if h.RopeScaling == "yarn" {
		h.Yarn = Yarn{
			OrigContext: r.optionalSize("rope.scaling.original_context_length", h.ContextLength),
			ExtFactor:   r.optionalFloat("rope.scaling.yarn_ext_factor", 1),
			AttnFactor:  r.optionalFloat("rope.scaling.yarn_attn_factor", 1),
			BetaFast:    r.optionalFloat("rope.scaling.yarn_beta_fast", 32),
			BetaSlow:    r.optionalFloat("rope.scaling.yarn_beta_slow", 1),
		}
	}
	if t, ok := f.Tensor("rope_freqs.weight"); ok && a.ropeFactors {
		h.RopeFactors = true
		if t.Type != ggml.F32 && t.Type != ggml.F16 {
			r.fail(fmt.Errorf("model: tensor \"rope_freqs.weight\" is %s, want F32 or F16", t.Type))
		}
	}
	if _, ok := f.Tensor("rope_factors_long.weight"); ok && a.longRope {
		h.LongRope = true
		h.LongRopeContext = r.optionalSize("rope.scaling.original_context_length", h.ContextLength)
	}
	h.RopeAttnFactor = r.optionalFloat("rope.scaling.attn_factor", 0)
	if !a.ignoresWindow {
		h.SlidingWindow = r.optionalSize("attention.sliding_window", 0)
	}
	if a.gemma2 {
		h.EmbedScale, h.GELU, h.PostNorms = true, true, true
		h.AttnSoftcap = r.optionalFloat("attention.logit_softcapping", 0)
		h.FinalSoftcap = r.optionalFloat("final_logit_softcapping", 0)
		if h.SlidingWindow > 0 {
			h.WindowPattern = 2 // llama.cpp: set_swa_pattern(2), the even layers local
		}
		if h.Layers == 46 && h.Heads > 0 {
			// llama.cpp's Gemma 2 27B (known by its 46 layers): query_pre_attn_scalar = dim/heads
			h.QueryScale = 1 / math.Sqrt(float64(h.Dim/h.Heads))
		}
		r.skip = gemma2Keys
	}
	if a.gemma3 {
		h.EmbedScale, h.GELU, h.PostNorms = true, true, true
		if h.SlidingWindow > 0 {
			h.WindowPattern = 6 // llama.cpp: set_swa_pattern(6), every 6th layer global
			h.LocalRopeBase = r.optionalFloat("rope.freq_base_swa", 10000)
		}
		if h.Layers == 62 && h.Heads > 0 {
			// llama.cpp's Gemma 3 27B (known by its 62 layers): query_pre_attn_scalar = dim/heads
			h.QueryScale = 1 / math.Sqrt(float64(h.Dim/h.Heads))
		}
		if h.RopeScaling == "yarn" {
			r.fail(fmt.Errorf("model: key %q: yarn on gemma3 is unsupported (linear is)", r.prefix+"rope.scaling.type"))
		}
		r.skip = gemma3Keys
	}
	if a.fusedGateUp {
		h.FusedGateUp = true
		_, h.FusedQKV = f.Tensor("blk.0.attn_qkv.weight")
	}
	r.unsupportedKeys()
	h.Vocab = r.vocab()
	_, hasOutput := f.Tensor("output.weight")
	h.TiedOutput = !hasOutput
	if r.err != nil {
		return HParams{}, r.err
	}
	if err := h.Validate(); err != nil {
		return HParams{}, err
	}
	return h, nil
}

// reader reads architecture-prefixed keys, keeping the first error.
type reader struct {
	f      *gguf.File
	prefix string
	err    error
	skip   map[string]bool // math keys the architecture reads (not refused)
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) has(key string) bool {
	_, ok := r.f.Value(r.prefix + key)
	return ok
}

func (r *reader) size(key string) int {
	v, err := r.f.Uint(r.prefix + key)
	if err != nil {
		r.fail(fmt.Errorf("model: %w", err))
		return 0
	}
	if v > maxSize {
		r.fail(fmt.Errorf("model: key %q: %d exceeds %d", r.prefix+key, v, maxSize))
		return 0
	}
	return int(v)
}

func (r *reader) optionalSize(key string, def int) int {
	if !r.has(key) {
		return def
	}
	return r.size(key)
}

func (r *reader) float(key string) float64 {
	v, err := r.f.Float(r.prefix + key)
	if err != nil {
		r.fail(fmt.Errorf("model: %w", err))
	}
	return v
}

func (r *reader) optionalFloat(key string, def float64) float64 {
	if !r.has(key) {
		return def
	}
	return r.float(key)
}

// ropeScaling reads rope.scaling.type and .factor, or the older
// rope.scale_linear. A factor of 0 or 1 means no scaling, as in llama.cpp.
func (r *reader) ropeScaling() (string, float64) {
	const typeKey = "rope.scaling.type"
	factor := r.optionalFloat("rope.scale_linear", 1)
	factor = r.optionalFloat("rope.scaling.factor", factor)
	kind := "linear"
	if r.has(typeKey) {
		s, err := r.f.String(r.prefix + typeKey)
		if err != nil {
			r.fail(fmt.Errorf("model: %w", err))
			return "none", 1
		}
		kind = s
	}
	switch {
	case kind == "none" || kind == "linear" && (factor == 0 || factor == 1):
		return "none", 1
	case kind == "linear":
		return "linear", factor
	case kind == "yarn":
		if factor == 0 {
			factor = 1
		}
		return "yarn", factor
	}
	r.fail(fmt.Errorf("model: key %q: rope scaling %q is unsupported (none, linear and yarn are)", r.prefix+typeKey, kind))
	return kind, factor
}

// vocab returns the number of embedding rows: from token_embd.weight when
// the file has weights (it may be padded beyond the tokenizer), else
// <arch>.vocab_size, else the tokenizer's token count.
func (r *reader) vocab() int {
	tokens, tokErr := r.f.Strings("tokenizer.ggml.tokens")
	n := 0
	switch emb, ok := r.f.Tensor("token_embd.weight"); {
	case ok && len(emb.Dims) == 2:
		if emb.Dims[1] > maxSize {
			r.fail(fmt.Errorf("model: tensor \"token_embd.weight\": %d rows exceed %d", emb.Dims[1], maxSize))
			return 0
		}
		n = int(emb.Dims[1])
	case ok:
		r.fail(fmt.Errorf("model: tensor \"token_embd.weight\": dims %v, want 2", emb.Dims))
		return 0
	case r.has("vocab_size"):
		n = r.size("vocab_size")
	case tokErr == nil:
		n = len(tokens)
	default:
		r.fail(fmt.Errorf("model: no token_embd.weight, %q or tokenizer tokens to size the vocabulary", r.prefix+"vocab_size"))
		return 0
	}
	if tokErr == nil && len(tokens) > n {
		r.fail(fmt.Errorf("model: the tokenizer has %d tokens, the model only %d", len(tokens), n))
	}
	return n
}

// HParamsFromLlama2c returns the hyper-parameters of a llama2.c checkpoint,
// with the constants run.c hard-codes.
func HParamsFromLlama2c(c llama2c.Config) (HParams, error) {
	h := HParams{
		Arch:          "llama",
		ContextLength: c.SeqLen,
		Dim:           c.Dim,
		Layers:        c.Layers,
		FFN:           c.HiddenDim,
		Heads:         c.Heads,
		KVHeads:       c.KVHeads,
		RopeBase:      llama2c.RopeBase,
		RopeScaling:   "none",
		RopeScale:     1,
		RMSEps:        llama2c.RMSEpsilon,
		Vocab:         c.VocabSize,
		TiedOutput:    c.SharedClassifier,
	}
	if c.Heads > 0 {
		h.RopeDim = c.Dim / c.Heads
	}
	if err := h.Validate(); err != nil {
		return HParams{}, err
	}
	return h, nil
}

// CheckTensors verifies that f has every tensor h requires, with the right
// shape, under llama.cpp's names, and no tensor the engine would not use
// (each would change the computation; llama.cpp refuses them too). It
// reports every problem, each naming its tensor.
func CheckTensors(f *gguf.File, h HParams) error {
	errs, unused := TensorReport(f, h)
	if len(f.Tensors) == 0 {
		return errors.New("model: the file holds no tensors (a vocabulary-only GGUF?): it has metadata but no weights to run")
	}
	for _, name := range unused {
		errs = append(errs, fmt.Errorf("model: tensor %q is not used by the %s architecture as implemented, and would change the computation", name, h.Arch))
	}
	// Name the first few problems; a wrong file type can miss hundreds.
	const shown = 4
	if len(errs) > shown {
		errs = append(errs[:shown], fmt.Errorf("model: and %d more tensor problems", len(errs)-shown))
	}
	return errors.Join(errs...)
}

// TensorReport returns the problems with the tensors h requires (missing,
// wrong shape) and the names of the file's tensors the engine does not use.
func TensorReport(f *gguf.File, h HParams) (problems []error, unused []string) {
	if err := h.Validate(); err != nil {
		return []error{err}, nil
	}
	used := map[string]bool{}
	want := func(name string, dims ...int) {
		used[name] = true
		t, ok := f.Tensor(name)
		if !ok {
			problems = append(problems, fmt.Errorf("model: tensor %q is missing", name))
			return
		}
		if !sameDims(t.Dims, dims) {
			problems = append(problems, fmt.Errorf("model: tensor %q has dims %v, want %v", name, t.Dims, dims))
		}
	}
	optional := func(name string, dims ...int) {
		if _, ok := f.Tensor(name); ok {
			want(name, dims...)
		}
	}
	dim, kv, q, hd := h.Dim, h.KVDim(), h.Heads*h.HeadDim(), h.HeadDim()
	want("token_embd.weight", dim, h.Vocab)
	want("output_norm.weight", dim)
	if _, hasOutput := f.Tensor("output.weight"); h.TiedOutput && hasOutput {
		problems = append(problems, errors.New(`model: tensor "output.weight" is present but the output is tied`))
	} else if !h.TiedOutput {
		want("output.weight", dim, h.Vocab)
	}
	a := architectures[h.Arch]
	if h.RopeFactors {
		want("rope_freqs.weight", h.RopeDim/2)
	}
	if h.LongRope {
		want("rope_factors_long.weight", h.RopeDim/2)
		want("rope_factors_short.weight", h.RopeDim/2)
	}
	for i := range h.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		want(p+"attn_norm.weight", dim)
		if h.FusedQKV {
			want(p+"attn_qkv.weight", dim, q+2*kv)
		} else {
			want(p+"attn_q.weight", dim, q)
			want(p+"attn_k.weight", dim, kv)
			want(p+"attn_v.weight", dim, kv)
		}
		want(p+"attn_output.weight", q, dim)
		want(p+"ffn_norm.weight", dim)
		if h.FusedGateUp {
			want(p+"ffn_up.weight", dim, 2*h.FFN)
		} else {
			want(p+"ffn_gate.weight", dim, h.FFN)
			want(p+"ffn_up.weight", dim, h.FFN)
		}
		want(p+"ffn_down.weight", h.FFN, dim)
		if a.biases {
			want(p+"attn_q.bias", q)
			want(p+"attn_k.bias", kv)
			want(p+"attn_v.bias", kv)
		} else {
			// llama.cpp loads Q/K/V biases wherever present, and so do we.
			optional(p+"attn_q.bias", q)
			optional(p+"attn_k.bias", kv)
			optional(p+"attn_v.bias", kv)
		}
		if h.QKNorm {
			want(p+"attn_q_norm.weight", hd)
			want(p+"attn_k_norm.weight", hd)
		}
		if h.PostNorms {
			want(p+"post_attention_norm.weight", dim)
			want(p+"post_ffw_norm.weight", dim)
		}
	}
	for _, t := range f.Tensors {
		if !used[t.Name] {
			unused = append(unused, t.Name)
		}
	}
	return problems, unused
}

func sameDims(got []uint64, want []int) bool {
	if len(got) != len(want) {
		return false
	}
	for i, d := range want {
		if got[i] != uint64(d) {
			return false
		}
	}
	return true
}
