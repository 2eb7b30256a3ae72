package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/synth"
	"github.com/stretchr/testify/require"
)

// TestInfoRopeTypeAndUnusedTensors: info names Llama 3's rope type and
// qwen3's Q/K norms, and lists a tensor the engine would not use, which
// generate then refuses by name (exit 1).
func TestInfoRopeTypeAndUnusedTensors(t *testing.T) {
	dir := t.TempDir()
	spec := synth.Spec{Arch: "llama", Dim: 32, Layers: 1, Heads: 4, KVHeads: 2, FFN: 64, Vocab: 272, Context: 64, WeightType: ggml.F32, RopeBase: 10000, Seed: 1,
		Llama3: &synth.Llama3Rope{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OrigContext: 32}}
	llama3 := filepath.Join(dir, "llama3.gguf")
	require.NoError(t, synth.Write(llama3, spec))
	r := runCLI(t, "info", llama3)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "type llama3 (per-frequency factors from rope_freqs.weight)")

	spec.Llama3, spec.Arch, spec.HeadDim = nil, "qwen3", 16
	qwen3 := filepath.Join(dir, "qwen3.gguf")
	require.NoError(t, synth.Write(qwen3, spec))
	r = runCLI(t, "info", qwen3)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "head dim 16")
	require.Contains(t, r.stdout, "RMS-normalised queries and keys")

	// The llama3 file again with a tensor the engine has no use for.
	f, err := gguf.Open(llama3)
	require.NoError(t, err)
	var ts []gguf.WriteTensor
	for _, ti := range f.Tensors {
		data, err := f.TensorData(&ti)
		require.NoError(t, err)
		ts = append(ts, gguf.WriteTensor{Name: ti.Name, Dims: ti.Dims, Type: ti.Type, Data: data})
	}
	ts = append(ts, gguf.WriteTensor{Name: "blk.0.attn_output.bias", Dims: []uint64{32}, Type: ggml.F32, Data: make([]byte, 128)})
	var kv []gguf.KV
	for _, k := range f.Keys() {
		v, _ := f.Value(k)
		kv = append(kv, gguf.KV{Key: k, Value: v})
	}
	extra := filepath.Join(dir, "extra.gguf")
	var buf bytes.Buffer
	require.NoError(t, gguf.Write(&buf, kv, ts))
	require.NoError(t, os.WriteFile(extra, buf.Bytes(), 0o644))
	f.Close()
	r = runCLI(t, "info", extra)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "unused       1 tensors the engine would not use, so it refuses the file: blk.0.attn_output.bias")
	r = runCLI(t, "generate", "-m", extra, "-n", "1")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `tensor "blk.0.attn_output.bias" is not used by the llama architecture`)
}

// TestInfoAndGenerateGemma2: info describes Gemma 2's window layers, softcaps
// and blocks; generate runs it under freqkv (the local layers in a window),
// and with a q8_0 KV cache under window.
func TestInfoAndGenerateGemma2(t *testing.T) {
	spec := synth.Spec{Arch: "gemma2", Dim: 32, Layers: 2, Heads: 2, KVHeads: 1, HeadDim: 32, FFN: 64, Vocab: 272, Context: 64, WeightType: ggml.F32,
		RopeBase: 10000, Seed: 3, Tied: true, SlidingWindow: 8, AttnSoftcap: 50, FinalSoftcap: 30}
	path := filepath.Join(t.TempDir(), "gemma2.gguf")
	require.NoError(t, synth.Write(path, spec))
	r := runCLI(t, "info", path)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "sliding window of 8 tokens on layers i with i % 2 < 1")
	require.Contains(t, r.stdout, "attention-logit softcap 50, final-logit softcap 30")
	require.Contains(t, r.stdout, "GELU (tanh) gating, post-attention and post-FFN norms")
	r = runCLI(t, "generate", "-m", path, "-n", "20", "-p", "ab", "--cache", "freqkv", "--cache-size", "16")
	require.Equal(t, 0, r.code, r.stderr)
	r = runCLI(t, "generate", "-m", path, "-n", "20", "-p", "ab", "--cache", "window", "--cache-size", "16", "--kv", "q8_0")
	require.Equal(t, 0, r.code, r.stderr)
}

// TestInfoAndGenerateGemma3: info names the local layers' rope base; generate
// runs it under freqkv.
func TestInfoAndGenerateGemma3(t *testing.T) {
	spec := synth.Spec{Arch: "gemma3", Dim: 32, Layers: 6, Heads: 2, KVHeads: 1, HeadDim: 16, FFN: 64, Vocab: 272, Context: 64, WeightType: ggml.F32,
		RopeBase: 1e6, Seed: 3, Tied: true, SlidingWindow: 8, LinearRope: 8}
	path := filepath.Join(t.TempDir(), "gemma3.gguf")
	require.NoError(t, synth.Write(path, spec))
	r := runCLI(t, "info", path)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "sliding window of 8 tokens on layers i with i % 6 < 5")
	require.Contains(t, r.stdout, "window layers: base 10000, unscaled")
	require.Contains(t, r.stdout, "RMS-normalised queries and keys")
	// 5 of 6 layers hold at most 8 rows of 16 f16 keys and values (64 bytes a
	// row); the one global layer holds every token (full) or N = 64 (freqkv).
	require.Contains(t, r.stdout, "5 of 6 layers hold at most their 8-token window")
	r = runCLI(t, "info", "--json", path)
	require.Equal(t, 0, r.code, r.stderr)
	var info struct {
		Mem []struct {
			Tokens int   `json:"tokens"`
			Full   int64 `json:"full_f16_bytes"`
			FreqKV int64 `json:"freqkv_f16_bytes"`
		} `json:"kv_memory"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info))
	require.Equal(t, 4096, info.Mem[0].Tokens)
	require.Equal(t, int64(4096*64+5*8*64), info.Mem[0].Full)
	require.Equal(t, int64(64*64+5*8*64), info.Mem[0].FreqKV)
	r = runCLI(t, "generate", "-m", path, "-n", "20", "-p", "ab", "--cache", "freqkv", "--cache-size", "16")
	require.Equal(t, 0, r.code, r.stderr)
}
