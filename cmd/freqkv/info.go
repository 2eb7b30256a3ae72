package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/tokenizer"
)

func init() {
	register(command{name: "info", summary: "a model's architecture, tensors, tokenizer and KV memory", run: runInfo})
}

// gpuType says which type the GPU kernels use for a tensor type.
func gpuType(t ggml.Type) string {
	switch t {
	case ggml.F32, ggml.F16, ggml.Q8_0, ggml.Q4_0, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K,
		ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.IQ4_NL:
		return t.String()
	case ggml.BF16:
		return "F16 (converted at load)"
	default:
		if !t.CanDequantize() {
			return "unsupported: loading refuses it"
		}
		return "Q8_0 (converted at load)"
	}
}

func runInfo(args []string) error {
	fs := newFlags("info", "MODEL [--tokenizer T] [--json]", "Prints a model's architecture, hyper-parameters, tensor types, tokenizer, and its KV-cache\nmemory at 4K/32K/128K tokens with a full cache vs FreqKV at its default N.")
	var mf modelFlags
	fs.StringVar(&mf.tokenizer, "tokenizer", "", "llama2.c tokenizer.bin, for llama2.c checkpoints")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("need exactly one MODEL argument")
	}
	mf.path = fs.Arg(0)
	if err := mf.check(); err != nil {
		return err
	}
	f, err := mf.open()
	if err != nil {
		return err
	}
	defer f.Close()
	h, err := model.HParamsFromGGUF(f)
	if err != nil {
		return err
	}
	problems, unused := model.TensorReport(f, h)
	if len(problems) > 0 {
		return model.CheckTensors(f, h)
	}
	ignored := model.IgnoredKeys(f)
	types := map[string]int{}
	var params uint64
	for _, t := range f.Tensors {
		types[t.Type.String()]++
		params += t.Elements()
	}
	// A tokenizer is described only once it passes the checks generate
	// makes; a file without one says so.
	tokDesc := "none (generate, perplexity and tokenize need one)"
	if _, ok := f.Value("tokenizer.ggml.model"); ok {
		if _, err := llama.LoadTokenizer(f); err != nil {
			return err
		}
		v, _ := tokenizer.FromGGUF(f)
		tokDesc = fmt.Sprintf("%s (%d tokens, pre %q, BOS %d, EOS %d)", v.Model, len(v.Tokens), v.Pre, v.BOS, v.EOS)
	}
	spec := kvcache.DefaultSpec(kvcache.FreqKV, h.ContextLength, engine.F16)
	geom := kvcache.Geometry{Layers: h.Layers, KVHeads: h.KVHeads, HeadDim: h.HeadDim()}
	type mem struct {
		Tokens     int   `json:"tokens"`
		FullBytes  int64 `json:"full_f16_bytes"`
		FreqKVByte int64 `json:"freqkv_f16_bytes"`
	}
	// Sliding-window layers hold at most the window's rows whatever the
	// policy (the engine gives them a window cache), so they count apart.
	local := 0
	for i := range h.Layers {
		if h.LocalLayer(i) {
			local++
		}
	}
	global := geom
	global.Layers = h.Layers - local
	windowed := geom
	windowed.Layers = local
	cacheBytes := func(rows int) (int64, error) {
		g, err := global.Bytes(spec.Storage, rows)
		if err != nil || local == 0 {
			return g, err
		}
		w, err := windowed.Bytes(spec.Storage, min(rows, h.SlidingWindow))
		return g + w, err
	}
	var mems []mem
	for _, n := range []int{4096, 32768, 131072} {
		full, err := cacheBytes(n)
		if err != nil {
			return err
		}
		held, err := cacheBytes(min(n, spec.Size))
		if err != nil {
			return err
		}
		mems = append(mems, mem{n, full, held})
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"file": mf.path, "gguf_version": f.Version, "hparams": h, "parameters": params, "tensor_types": types,
			"tokenizer": tokDesc, "freqkv_default": specJSON(spec), "kv_memory": mems, "rope_type": h.RopeType(),
			"unused_tensors": unused, "ignored_keys": ignored,
		})
	}
	format := fmt.Sprintf("GGUF v%d", f.Version)
	if !isGGUF(mf.path) {
		format = "llama2.c checkpoint"
	}
	fmt.Fprintf(stdout, "model        %s (%s)\n", mf.path, format)
	fmt.Fprintf(stdout, "architecture %s, %.1fM parameters\n", h.Arch, float64(params)/1e6)
	fmt.Fprintf(stdout, "dims         embedding %d, layers %d, ffn %d, heads %d, kv heads %d, head dim %d\n", h.Dim, h.Layers, h.FFN, h.Heads, h.KVHeads, h.HeadDim())
	rope := "adjacent pairs (llama)"
	if h.RopeNeoX {
		rope = "split halves (NeoX)"
	}
	fmt.Fprintf(stdout, "rope         %s, dim %d, base %g, type %s%s\n", rope, h.RopeDim, h.RopeBase, h.RopeType(), ropeDetail(h))
	if h.QKNorm {
		fmt.Fprintf(stdout, "attention    RMS-normalised queries and keys per head before RoPE\n")
	}
	switch {
	case h.SlidingWindow > 0 && h.WindowPattern == 0:
		fmt.Fprintf(stdout, "attention    sliding window of %d tokens on every layer\n", h.SlidingWindow)
	case h.SlidingWindow > 0:
		fmt.Fprintf(stdout, "attention    sliding window of %d tokens on layers i with i %% %d < %d (a window cache there; the chosen policy elsewhere)\n", h.SlidingWindow, h.WindowPattern, h.WindowPattern-1)
	}
	if h.LocalRopeBase > 0 {
		fmt.Fprintf(stdout, "rope         window layers: base %g, unscaled\n", h.LocalRopeBase)
	}
	if h.AttnSoftcap > 0 || h.FinalSoftcap > 0 || h.QueryScale > 0 {
		fmt.Fprintf(stdout, "attention    query scale %.4g, attention-logit softcap %g, final-logit softcap %g\n", h.AttentionScale(), h.AttnSoftcap, h.FinalSoftcap)
	}
	if h.EmbedScale || h.GELU || h.PostNorms {
		fmt.Fprintf(stdout, "blocks       embedding x sqrt(%d), GELU (tanh) gating, post-attention and post-FFN norms\n", h.Dim)
	}
	fmt.Fprintf(stdout, "context      %d (trained), rms eps %.3g, vocab %d, output %s\n", h.ContextLength, h.RMSEps, h.Vocab, map[bool]string{true: "tied to token_embd", false: "separate"}[h.TiedOutput])
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var t ggml.Type
		for _, ti := range f.Tensors {
			if ti.Type.String() == n {
				t = ti.Type
				break
			}
		}
		fmt.Fprintf(stdout, "tensors      %3d x %-5s -> GPU %s\n", types[n], n, gpuType(t))
	}
	if len(unused) > 0 {
		fmt.Fprintf(stdout, "unused       %d tensors the engine would not use, so it refuses the file: %s\n", len(unused), listSome(unused, 6))
	}
	if len(ignored) > 0 {
		fmt.Fprintf(stdout, "ignored keys %s (unknown to the engine; llama.cpp ignores unknown keys too)\n", listSome(ignored, 6))
	}
	fmt.Fprintf(stdout, "tokenizer    %s\n", tokDesc)
	fmt.Fprintf(stdout, "KV cache (f16; %s):\n", describe(spec))
	if local > 0 {
		fmt.Fprintf(stdout, "  (%d of %d layers hold at most their %d-token window)\n", local, h.Layers, h.SlidingWindow)
	}
	for _, m := range mems {
		fmt.Fprintf(stdout, "  %6d tokens: full %10s   freqkv %10s\n", m.Tokens, humanBytes(m.FullBytes), humanBytes(m.FreqKVByte))
	}
	return nil
}

func isGGUF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && string(magic[:]) == "GGUF"
}

// ropeDetail describes the rope type's parameters.
func ropeDetail(h model.HParams) string {
	var parts []string
	if h.RopeScaling != "none" {
		parts = append(parts, fmt.Sprintf("%s x%g", h.RopeScaling, h.RopeScale))
	}
	if h.RopeScaling == "yarn" {
		y := h.Yarn
		parts = append(parts, fmt.Sprintf("original context %d, ext %g, attn %g, beta %g/%g", y.OrigContext, y.ExtFactor, y.AttnFactor, y.BetaFast, y.BetaSlow))
	}
	if h.RopeFactors {
		parts = append(parts, "per-frequency factors from rope_freqs.weight")
	}
	if h.LongRope {
		parts = append(parts, fmt.Sprintf("rope_factors_short up to %d positions, rope_factors_long past them", h.LongRopeContext))
	}
	if h.RopeAttnFactor != 0 {
		parts = append(parts, fmt.Sprintf("cos and sin scaled by %g", h.RopeAttnFactor))
	}
	if len(parts) == 0 {
		return ", no scaling"
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// listSome joins the first n names and counts the rest.
func listSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
