package model

import (
	"fmt"
	"sort"
	"strings"

	"github.com/freqkv/freqkv/model/gguf"
)

// usedKeys are the architecture keys (after "<arch>.") the engine reads.
var usedKeys = map[string]bool{
	"context_length": true, "embedding_length": true, "block_count": true, "feed_forward_length": true,
	"attention.head_count": true, "attention.head_count_kv": true, "attention.layer_norm_rms_epsilon": true,
	"attention.key_length": true, "attention.value_length": true, "attention.sliding_window": true,
	"rope.dimension_count": true, "rope.freq_base": true, "rope.scale_linear": true,
	"rope.scaling.type": true, "rope.scaling.factor": true, "rope.scaling.original_context_length": true,
	"rope.scaling.yarn_ext_factor": true, "rope.scaling.yarn_attn_factor": true,
	"rope.scaling.yarn_beta_fast": true, "rope.scaling.yarn_beta_slow": true, "rope.scaling.attn_factor": true,
	"vocab_size": true,
}

// harmlessKeys are architecture keys that don't change the forward pass.
var harmlessKeys = map[string]bool{
	"rope.scaling.finetuned": true, // a flag for tools; the scaling itself is in type and factor
	"expert_used_count":      true, // meaningless without experts, which are refused
	"tensor_data_layout":     true, // old llama.cpp's note on the Q/K permutation it applied
}

// mathKeys change the computation in ways the engine does not implement: a
// file with any of them is refused, naming the key. (Presence with a
// neutral value is accepted where one exists.)
var mathKeys = map[string]string{
	"attention.logit_softcapping":      "attention-logit softcapping",
	"final_logit_softcapping":          "final-logit softcapping",
	"attention.scale":                  "a custom attention scale",
	"attention.output_scale":           "a custom attention output scale",
	"embedding_scale":                  "embedding scaling",
	"residual_scale":                   "residual scaling",
	"logit_scale":                      "logit scaling",
	"attention.sliding_window_pattern": "sliding windows on some layers only",
	"attention.layer_norm_epsilon":     "LayerNorm (not RMSNorm)",
	"attention.clamp_kqv":              "clamped Q/K/V",
	"attention.max_alibi_bias":         "ALiBi",
	"attention.temperature_scale":      "attention temperature scaling",
	"attention.temperature_length":     "attention temperature scaling",
	"rope.scaling.yarn_log_multiplier": "YaRN's log multiplier (DeepSeek)",
	"rope.dimension_sections":          "multi-section RoPE",
	"rope.freq_base_swa":               "a separate RoPE base for sliding-window layers",
	"expert_count":                     "mixture of experts",
	"pooling_type":                     "pooling (an embedding model)",
}

// neutral reports whether a math key's value leaves the computation as the
// engine does it (e.g. expert_count 0, a softcap of 0).
func neutral(v any) bool {
	switch x := v.(type) {
	case uint8, uint16, uint32, uint64, int8, int16, int32, int64:
		return fmt.Sprint(x) == "0"
	case float32:
		return x == 0
	case float64:
		return x == 0
	case bool:
		return !x
	}
	return false
}

// unsupportedKeys fails on the first architecture key that changes the
// math in a way the engine does not implement.
func (r *reader) unsupportedKeys() {
	for _, key := range sortedKeys(r.f) {
		rest, ok := strings.CutPrefix(key, r.prefix)
		if !ok {
			continue
		}
		what, bad := mathKeys[rest]
		if !bad || r.skip[rest] {
			continue
		}
		if v, _ := r.f.Value(key); neutral(v) {
			continue
		}
		r.fail(fmt.Errorf("model: key %q: %s is unsupported; the model would compute something else", key, what))
		return
	}
}

// IgnoredKeys lists the file's architecture keys the engine neither reads
// nor knows to be harmless (warnings: llama.cpp ignores unknown keys too).
func IgnoredKeys(f *gguf.File) []string {
	arch, err := f.String("general.architecture")
	if err != nil {
		return nil
	}
	var out []string
	for _, key := range sortedKeys(f) {
		rest, ok := strings.CutPrefix(key, arch+".")
		if !ok || harmlessKeys[rest] {
			continue
		}
		if usedKeys[rest] && !(rest == "attention.sliding_window" && architectures[arch].ignoresWindow) {
			continue
		}
		if rest == "rope.freq_base_swa" && architectures[arch].gemma3 {
			continue // read
		}
		if _, refused := mathKeys[rest]; refused {
			continue // neutral values only; others fail HParamsFromGGUF
		}
		out = append(out, key)
	}
	return out
}

func sortedKeys(f *gguf.File) []string {
	keys := f.Keys()
	sort.Strings(keys)
	return keys
}
