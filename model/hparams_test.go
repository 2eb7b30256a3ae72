package model

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama2c"
)

// synthFile describes a small model file; its fields are written as GGUF
// keys and tensors by build.
type synthFile struct {
	arch                                    string
	ctx, dim, layers, ffn, heads, kv, vocab uint32
	eps                                     any // layer_norm_rms_epsilon; float32(1e-6) when nil
	extraKV                                 []gguf.KV
	tied                                    bool
	skip                                    map[string]bool     // tensors to leave out
	reshape                                 map[string][]uint64 // tensors to give other dims
	extra                                   map[string][]uint64 // more F32 tensors, by name and dims
}

func qwenLike() synthFile {
	return synthFile{arch: "qwen2", ctx: 128, dim: 16, layers: 2, ffn: 24, heads: 4, kv: 2, vocab: 10}
}

func (s synthFile) build(t *testing.T) *gguf.File {
	t.Helper()
	p := s.arch + "."
	kv := []gguf.KV{
		{Key: "general.architecture", Value: s.arch},
		{Key: p + "context_length", Value: s.ctx},
		{Key: p + "embedding_length", Value: s.dim},
		{Key: p + "block_count", Value: s.layers},
		{Key: p + "feed_forward_length", Value: s.ffn},
		{Key: p + "attention.head_count", Value: s.heads},
		{Key: p + "attention.head_count_kv", Value: s.kv},
		{Key: p + "attention.layer_norm_rms_epsilon", Value: float32(1e-6)},
		{Key: p + "rope.freq_base", Value: float32(1e6)},
	}
	if s.eps != nil {
		kv[7].Value = s.eps
	}
	kv = append(kv, s.extraKV...)
	d, f, v := uint64(s.dim), uint64(s.ffn), uint64(s.vocab)
	kvDim := uint64(s.kv) * d / uint64(s.heads)
	var tensors []gguf.WriteTensor
	add := func(name string, dims ...uint64) {
		if s.skip[name] {
			return
		}
		if r, ok := s.reshape[name]; ok {
			dims = r
		}
		n := uint64(1)
		for _, x := range dims {
			n *= x
		}
		tensors = append(tensors, gguf.WriteTensor{Name: name, Dims: dims, Type: ggml.F32, Data: make([]byte, 4*n)})
	}
	add("token_embd.weight", d, v)
	add("output_norm.weight", d)
	if !s.tied {
		add("output.weight", d, v)
	}
	for i := range s.layers {
		b := fmt.Sprintf("blk.%d.", i)
		add(b+"attn_norm.weight", d)
		add(b+"attn_q.weight", d, d)
		add(b+"attn_k.weight", d, kvDim)
		add(b+"attn_v.weight", d, kvDim)
		add(b+"attn_output.weight", d, d)
		add(b+"ffn_norm.weight", d)
		add(b+"ffn_gate.weight", d, f)
		add(b+"ffn_up.weight", d, f)
		add(b+"ffn_down.weight", f, d)
		if s.arch == "qwen2" {
			add(b+"attn_q.bias", d)
			add(b+"attn_k.bias", kvDim)
			add(b+"attn_v.bias", kvDim)
		}
	}
	for name, dims := range s.extra {
		add(name, dims...)
	}
	var buf bytes.Buffer
	require.NoError(t, gguf.Write(&buf, kv, tensors))
	file, err := gguf.Parse(buf.Bytes())
	require.NoError(t, err)
	return file
}

func TestHParamsQwen2(t *testing.T) {
	f := qwenLike().build(t)
	h, err := HParamsFromGGUF(f)
	require.NoError(t, err)
	assert.Equal(t, HParams{
		Arch: "qwen2", ContextLength: 128, Dim: 16, Layers: 2, FFN: 24, Heads: 4, KVHeads: 2,
		RopeDim: 4, RopeBase: 1e6, RopeScaling: "none", RopeScale: 1, RMSEps: float64(float32(1e-6)),
		Vocab: 10, TiedOutput: false, RopeNeoX: true,
	}, h)
	assert.Equal(t, 4, h.HeadDim())
	assert.Equal(t, 8, h.KVDim())
	require.NoError(t, CheckTensors(f, h))
}

func TestCheckTensorsNamesTheTensor(t *testing.T) {
	s := qwenLike()
	s.skip = map[string]bool{"blk.1.attn_k.bias": true}
	s.reshape = map[string][]uint64{"blk.0.ffn_down.weight": {16, 24}}
	f := s.build(t)
	h, err := HParamsFromGGUF(f)
	require.NoError(t, err)
	err = CheckTensors(f, h)
	assert.ErrorContains(t, err, `tensor "blk.1.attn_k.bias" is missing`)
	assert.ErrorContains(t, err, `tensor "blk.0.ffn_down.weight" has dims [16 24], want [24 16]`)

	// Without output.weight the output is tied; llama needs no biases.
	s = qwenLike()
	s.arch, s.tied = "llama", true
	f = s.build(t)
	h, err = HParamsFromGGUF(f)
	require.NoError(t, err)
	assert.True(t, h.TiedOutput)
	assert.False(t, h.RopeNeoX)
	require.NoError(t, CheckTensors(f, h))

	h.TiedOutput = false
	assert.ErrorContains(t, CheckTensors(f, h), `tensor "output.weight" is missing`)
	h.TiedOutput, h.Layers = true, 3
	assert.ErrorContains(t, CheckTensors(f, h), `tensor "blk.2.attn_norm.weight" is missing`)
	assert.ErrorContains(t, CheckTensors(f, h), "and 5 more tensor problems", "9 missing, 4 named")
	h.Heads = 5
	assert.ErrorContains(t, CheckTensors(f, h), "does not divide")
}

func TestHParamsRopeScaling(t *testing.T) {
	cases := []struct {
		name   string
		kv     []gguf.KV
		kind   string
		factor float64
		err    string
	}{
		{"none", nil, "none", 1, ""},
		{"linear", []gguf.KV{{Key: "qwen2.rope.scaling.type", Value: "linear"}, {Key: "qwen2.rope.scaling.factor", Value: float32(4)}}, "linear", 4, ""},
		{"factor only", []gguf.KV{{Key: "qwen2.rope.scaling.factor", Value: float32(2)}}, "linear", 2, ""},
		{"legacy", []gguf.KV{{Key: "qwen2.rope.scale_linear", Value: float32(8)}}, "linear", 8, ""},
		{"linear one", []gguf.KV{{Key: "qwen2.rope.scaling.type", Value: "linear"}, {Key: "qwen2.rope.scaling.factor", Value: float32(1)}}, "none", 1, ""},
		{"explicit none", []gguf.KV{{Key: "qwen2.rope.scaling.type", Value: "none"}, {Key: "qwen2.rope.scaling.factor", Value: float32(4)}}, "none", 1, ""},
		{"yarn", []gguf.KV{{Key: "qwen2.rope.scaling.type", Value: "yarn"}, {Key: "qwen2.rope.scaling.factor", Value: float32(4)}}, "yarn", 4, ""},
		{"longrope", []gguf.KV{{Key: "qwen2.rope.scaling.type", Value: "longrope"}}, "", 0, `key "qwen2.rope.scaling.type": rope scaling "longrope" is unsupported`},
		{"negative", []gguf.KV{{Key: "qwen2.rope.scaling.factor", Value: float32(-2)}}, "", 0, "rope scale -2"},
		{"type not string", []gguf.KV{{Key: "qwen2.rope.scaling.type", Value: uint32(1)}}, "", 0, `key "qwen2.rope.scaling.type": type uint32, want string`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := qwenLike()
			s.extraKV = c.kv
			h, err := HParamsFromGGUF(s.build(t))
			if c.err != "" {
				assert.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.kind, h.RopeScaling)
			assert.Equal(t, c.factor, h.RopeScale)
		})
	}
}

func TestHParamsFromGGUFRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*synthFile)
		err    string
	}{
		{"arch", func(s *synthFile) { s.arch = "falcon" }, `unsupported architecture "falcon"`},
		{"heads", func(s *synthFile) { s.heads = 3 }, "head count 3 does not divide embedding width 16"},
		{"kv heads", func(s *synthFile) { s.kv = 3 }, "kv head count 3 does not divide head count 4"},
		{"zero layers", func(s *synthFile) { s.layers = 0 }, "layer count 0"},
		{"huge ffn", func(s *synthFile) { s.ffn = 1 << 30; s.layers = 0 }, `key "qwen2.feed_forward_length": 1073741824 exceeds`},
		{"experts", func(s *synthFile) { s.extraKV = []gguf.KV{{Key: "qwen2.expert_count", Value: uint32(8)}} }, "experts is unsupported"},
		{"value length", func(s *synthFile) { s.extraKV = []gguf.KV{{Key: "qwen2.attention.value_length", Value: uint32(8)}} }, `key "qwen2.attention.value_length": value width 8 differs from key width 4`},
		{"softcap", func(s *synthFile) {
			s.extraKV = []gguf.KV{{Key: "qwen2.final_logit_softcapping", Value: float32(30)}}
		}, `key "qwen2.final_logit_softcapping": final-logit softcapping is unsupported`},
		{"swa pattern", func(s *synthFile) {
			s.extraKV = []gguf.KV{{Key: "qwen2.attention.sliding_window_pattern", Value: []bool{true, false}}}
		}, `key "qwen2.attention.sliding_window_pattern": sliding windows on some layers only is unsupported`},
		{"rope dim", func(s *synthFile) { s.extraKV = []gguf.KV{{Key: "qwen2.rope.dimension_count", Value: uint32(6)}} }, "rope dimension 6"},
		{"eps type", func(s *synthFile) { s.eps = uint32(1) }, `key "qwen2.attention.layer_norm_rms_epsilon": type uint32, want float32 or float64`},
		{"tokens", func(s *synthFile) {
			s.extraKV = []gguf.KV{{Key: "tokenizer.ggml.tokens", Value: make([]string, 11)}}
		}, "the tokenizer has 11 tokens, the model only 10"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := qwenLike()
			c.mutate(&s)
			_, err := HParamsFromGGUF(s.build(t))
			assert.ErrorContains(t, err, c.err)
		})
	}
}

func TestHParamsMissingKeyIsNamed(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, gguf.Write(&buf, []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "llama.context_length", Value: uint32(8)},
		{Key: "llama.embedding_length", Value: uint32(8)},
	}, nil))
	f, err := gguf.Parse(buf.Bytes())
	require.NoError(t, err)
	_, err = HParamsFromGGUF(f)
	assert.ErrorIs(t, err, gguf.ErrMissing)
	assert.ErrorContains(t, err, `"llama.block_count"`)
}

func TestValidate(t *testing.T) {
	good := HParams{Arch: "llama", ContextLength: 8, Dim: 8, Layers: 1, FFN: 8, Heads: 2, KVHeads: 1,
		RopeDim: 4, RopeBase: 1e4, RopeScaling: "none", RopeScale: 1, RMSEps: 1e-5, Vocab: 4}
	require.NoError(t, good.Validate())
	for name, c := range map[string]struct {
		mutate func(*HParams)
		err    string
	}{
		"arch":       {func(h *HParams) { h.Arch = "gpt2" }, "unsupported architecture"},
		"vocab":      {func(h *HParams) { h.Vocab = 0 }, "vocabulary size 0"},
		"odd rope":   {func(h *HParams) { h.RopeDim = 3 }, "rope dimension 3"},
		"wide rope":  {func(h *HParams) { h.RopeDim = 6 }, "rope dimension 6"},
		"eps":        {func(h *HParams) { h.RMSEps = 0 }, "rms epsilon"},
		"base nan":   {func(h *HParams) { h.RopeBase = nan() }, "rope base"},
		"scale":      {func(h *HParams) { h.RopeScale = 2 }, "rope scale 2 without rope scaling"},
		"scaling":    {func(h *HParams) { h.RopeScaling = "longrope" }, `unsupported rope scaling "longrope"`},
		"yarn":       {func(h *HParams) { h.RopeScaling = "yarn" }, "yarn original context 0"},
		"kv heads":   {func(h *HParams) { h.KVHeads = 0 }, "kv head count 0"},
		"huge":       {func(h *HParams) { h.ContextLength = 1 << 40 }, "context length"},
		"kv divides": {func(h *HParams) { h.Heads, h.KVHeads, h.Dim = 4, 3, 8 }, "kv head count 3"},
	} {
		h := good
		c.mutate(&h)
		assert.ErrorContains(t, h.Validate(), c.err, name)
	}
	h := good
	h.RopeScaling, h.RopeScale = "linear", 4
	assert.NoError(t, h.Validate())
}

func nan() float64 { var z float64; return z / z }

func TestHParamsStories260K(t *testing.T) {
	f, err := gguf.Open(shareddata.Path(t, "models/stories260K.gguf"))
	require.NoError(t, err)
	defer f.Close()
	h, err := HParamsFromGGUF(f)
	require.NoError(t, err)
	assert.Equal(t, HParams{
		Arch: "llama", ContextLength: 2048, Dim: 64, Layers: 5, FFN: 172, Heads: 8, KVHeads: 4,
		RopeDim: 8, RopeBase: 10000, RopeScaling: "none", RopeScale: 1, RMSEps: float64(float32(1e-5)),
		Vocab: 512, TiedOutput: false,
	}, h)
	require.NoError(t, CheckTensors(f, h))

	ck, err := llama2c.ReadCheckpoint(shareddata.Path(t, "models/stories260K.bin"))
	require.NoError(t, err)
	hc, err := HParamsFromLlama2c(ck.Config)
	require.NoError(t, err)
	assert.Equal(t, 512, hc.ContextLength, "trained context, not the GGUF's 2048")
	assert.True(t, hc.TiedOutput)

	// The converted checkpoint reads back to the same hyper-parameters.
	tok, err := llama2c.ReadTokenizer(shareddata.Path(t, "models/tok512.bin"), ck.VocabSize)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, llama2c.Convert(&buf, ck, tok))
	conv, err := gguf.Parse(buf.Bytes())
	require.NoError(t, err)
	hg, err := HParamsFromGGUF(conv)
	require.NoError(t, err)
	hc.RMSEps = float64(float32(hc.RMSEps)) // stored as float32
	assert.Equal(t, hc, hg)
	require.NoError(t, CheckTensors(conv, hg))
}

func TestHParamsTinyRandom(t *testing.T) {
	f, err := gguf.Open(shareddata.Path(t, "models/llama-2-tiny-random.gguf"))
	require.NoError(t, err)
	defer f.Close()
	h, err := HParamsFromGGUF(f)
	require.NoError(t, err)
	assert.Equal(t, 8, h.Dim)
	assert.Equal(t, 2, h.Heads)
	assert.Equal(t, 4, h.RopeDim)
	assert.Equal(t, 32000, h.Vocab)
	assert.Equal(t, 4096, h.ContextLength)
	require.NoError(t, CheckTensors(f, h))
}

// deepseek-coder's vocabulary file records linear RoPE scaling by 4 and a
// vocab_size padded beyond its tokens; it has no weights.
func TestHParamsDeepseekCoderVocab(t *testing.T) {
	f, err := gguf.Open(shareddata.Path(t, "vocab/ggml-vocab-deepseek-coder.gguf"))
	require.NoError(t, err)
	defer f.Close()
	h, err := HParamsFromGGUF(f)
	require.NoError(t, err)
	assert.Equal(t, "linear", h.RopeScaling)
	assert.Equal(t, 4.0, h.RopeScale)
	assert.Equal(t, 32256, h.Vocab)
	assert.Equal(t, 100000.0, h.RopeBase)
	assert.True(t, h.TiedOutput, "no output.weight in a vocabulary-only file")
	err = CheckTensors(f, h)
	assert.ErrorContains(t, err, "holds no tensors")
}

// TestUnusedTensorsAreRefused: a tensor the engine would not use changes the
// computation, so loading refuses it by name (llama.cpp refuses it too), and
// TensorReport lists it for info.
func TestUnusedTensorsAreRefused(t *testing.T) {
	s := qwenLike()
	s.extra = map[string][]uint64{"blk.0.attn_output.bias": {16}, "rope_freqs.weight": {2}}
	f := s.build(t)
	h, err := HParamsFromGGUF(f)
	require.NoError(t, err)
	assert.False(t, h.RopeFactors, "qwen2 has no rope factors in llama.cpp")
	problems, unused := TensorReport(f, h)
	assert.Empty(t, problems)
	assert.ElementsMatch(t, []string{"blk.0.attn_output.bias", "rope_freqs.weight"}, unused)
	err = CheckTensors(f, h)
	assert.ErrorContains(t, err, `tensor "blk.0.attn_output.bias" is not used by the qwen2 architecture`)
	assert.ErrorContains(t, err, `tensor "rope_freqs.weight" is not used`)

	// llama: rope_freqs.weight is Llama 3's rope type, used and shape-checked.
	s = qwenLike()
	s.arch = "llama"
	s.extra = map[string][]uint64{"rope_freqs.weight": {2}}
	f = s.build(t)
	h, err = HParamsFromGGUF(f)
	require.NoError(t, err)
	assert.True(t, h.RopeFactors)
	assert.Equal(t, "llama3", h.RopeType())
	require.NoError(t, CheckTensors(f, h))
	s.extra = map[string][]uint64{"rope_freqs.weight": {3}}
	f = s.build(t)
	h, err = HParamsFromGGUF(f)
	require.NoError(t, err)
	assert.ErrorContains(t, CheckTensors(f, h), `tensor "rope_freqs.weight" has dims [3], want [2]`)
}

func TestHParamsQwen3(t *testing.T) {
	s := qwenLike()
	s.arch = "qwen3"
	s.extraKV = []gguf.KV{{Key: "qwen3.attention.key_length", Value: uint32(8)}, {Key: "qwen3.attention.value_length", Value: uint32(8)}}
	h, err := HParamsFromGGUF(s.build(t))
	require.NoError(t, err)
	assert.True(t, h.QKNorm)
	assert.True(t, h.RopeNeoX)
	assert.Equal(t, 8, h.HeadDim(), "key_length, not dim/heads")
	assert.Equal(t, 8, h.RopeDim)
	assert.Equal(t, 16, h.KVDim())
}

func TestHParamsYarnAndWindow(t *testing.T) {
	s := qwenLike()
	s.arch = "llama"
	s.extraKV = []gguf.KV{
		{Key: "llama.rope.scaling.type", Value: "yarn"}, {Key: "llama.rope.scaling.factor", Value: float32(4)},
		{Key: "llama.rope.scaling.yarn_beta_fast", Value: float32(16)},
		{Key: "llama.attention.sliding_window", Value: uint32(64)},
		{Key: "llama.expert_count", Value: uint32(0)}, // neutral: no experts
		{Key: "llama.some_future_key", Value: uint32(3)},
	}
	f := s.build(t)
	h, err := HParamsFromGGUF(f)
	require.NoError(t, err)
	assert.Equal(t, "yarn", h.RopeType())
	assert.Equal(t, Yarn{OrigContext: 128, ExtFactor: 1, AttnFactor: 1, BetaFast: 16, BetaSlow: 1}, h.Yarn)
	assert.Equal(t, 64, h.SlidingWindow)
	assert.Equal(t, []string{"llama.some_future_key"}, IgnoredKeys(f))
}

// TestHParamsPhi3: fused projections; the sliding window is ignored with a
// warning, as llama.cpp ignores it for phi3.
func TestHParamsPhi3(t *testing.T) {
	s := qwenLike()
	s.arch = "phi3"
	s.extraKV = []gguf.KV{{Key: "phi3.attention.sliding_window", Value: uint32(2047)}}
	s.skip = map[string]bool{}
	s.extra = map[string][]uint64{}
	for i := range 2 {
		p := fmt.Sprintf("blk.%d.", i)
		for _, n := range []string{"attn_q.weight", "attn_k.weight", "attn_v.weight", "ffn_gate.weight"} {
			s.skip[p+n] = true
		}
		s.extra[p+"attn_qkv.weight"] = []uint64{16, 16 + 2*8}
		if s.reshape == nil {
			s.reshape = map[string][]uint64{}
		}
		s.reshape[p+"ffn_up.weight"] = []uint64{16, 2 * 24}
	}
	f := s.build(t)
	h, err := HParamsFromGGUF(f)
	require.NoError(t, err)
	assert.True(t, h.FusedQKV)
	assert.True(t, h.FusedGateUp)
	assert.True(t, h.RopeNeoX)
	assert.Zero(t, h.SlidingWindow)
	assert.Equal(t, []string{"phi3.attention.sliding_window"}, IgnoredKeys(f))
	require.NoError(t, CheckTensors(f, h))
}

// TestHParamsGemma2: the softcaps are read (not refused), the window falls on
// the even layers, llama.cpp's 27B query scale is kept, the post-norms are
// required, and other math keys are still refused.
func TestHParamsGemma2(t *testing.T) {
	s := qwenLike()
	s.arch = "gemma2"
	s.tied = true
	s.extraKV = []gguf.KV{
		{Key: "gemma2.attention.logit_softcapping", Value: float32(50)},
		{Key: "gemma2.final_logit_softcapping", Value: float32(30)},
		{Key: "gemma2.attention.sliding_window", Value: uint32(4096)},
	}
	s.extra = map[string][]uint64{}
	for i := range 2 {
		s.extra[fmt.Sprintf("blk.%d.post_attention_norm.weight", i)] = []uint64{16}
		s.extra[fmt.Sprintf("blk.%d.post_ffw_norm.weight", i)] = []uint64{16}
	}
	f := s.build(t)
	h, err := HParamsFromGGUF(f)
	require.NoError(t, err)
	assert.True(t, h.EmbedScale && h.GELU && h.PostNorms && h.RopeNeoX)
	assert.Equal(t, 50.0, h.AttnSoftcap)
	assert.Equal(t, 30.0, h.FinalSoftcap)
	assert.Equal(t, 4096, h.SlidingWindow)
	assert.Equal(t, []bool{true, false, true, false}, []bool{h.LocalLayer(0), h.LocalLayer(1), h.LocalLayer(2), h.LocalLayer(3)})
	assert.InDelta(t, 0.5, h.AttentionScale(), 1e-12, "1/sqrt(head dim 4)")
	assert.Empty(t, IgnoredKeys(f))
	require.NoError(t, CheckTensors(f, h))

	h.Layers = 46 // Gemma 2 27B: llama.cpp scales queries by 1/sqrt(dim/heads)
	s.layers = 46
	s.extra = nil
	s.skip = nil
	for i := range 46 {
		if s.extra == nil {
			s.extra = map[string][]uint64{}
		}
		s.extra[fmt.Sprintf("blk.%d.post_attention_norm.weight", i)] = []uint64{16}
		s.extra[fmt.Sprintf("blk.%d.post_ffw_norm.weight", i)] = []uint64{16}
	}
	s.extraKV = append(s.extraKV, gguf.KV{Key: "gemma2.attention.key_length", Value: uint32(8)}, gguf.KV{Key: "gemma2.attention.value_length", Value: uint32(8)})
	h27, err := HParamsFromGGUF(s.build(t))
	require.NoError(t, err)
	assert.InDelta(t, 0.5, h27.AttentionScale(), 1e-12, "1/sqrt(16/4), not 1/sqrt(key length 8)")

	s.layers, s.extra = 2, nil
	s.extraKV = []gguf.KV{{Key: "gemma2.embedding_scale", Value: float32(2)}}
	_, err = HParamsFromGGUF(s.build(t))
	require.ErrorContains(t, err, `"gemma2.embedding_scale": embedding scaling is unsupported`)
	s.extraKV = nil
	s.skip = map[string]bool{"blk.1.post_ffw_norm.weight": true}
	f = s.build(t)
	h, err = HParamsFromGGUF(f)
	require.NoError(t, err)
	require.ErrorContains(t, CheckTensors(f, h), `tensor "blk.0.post_attention_norm.weight" is missing`)
}

// TestHParamsGemma3: a global layer every 6th, the local layers' own rope
// base (rope.freq_base_swa when present, else 10000) without scaling.
func TestHParamsGemma3(t *testing.T) {
	s := qwenLike()
	s.arch, s.tied, s.layers = "gemma3", true, 7
	s.extraKV = []gguf.KV{
		{Key: "gemma3.attention.sliding_window", Value: uint32(512)},
		{Key: "gemma3.rope.scaling.type", Value: "linear"}, {Key: "gemma3.rope.scaling.factor", Value: float32(8)},
		{Key: "gemma3.attention.key_length", Value: uint32(4)}, {Key: "gemma3.attention.value_length", Value: uint32(4)},
	}
	s.extra = map[string][]uint64{}
	for i := range 7 {
		for _, n := range []string{"post_attention_norm", "post_ffw_norm"} {
			s.extra[fmt.Sprintf("blk.%d.%s.weight", i, n)] = []uint64{16}
		}
		for _, n := range []string{"attn_q_norm", "attn_k_norm"} {
			s.extra[fmt.Sprintf("blk.%d.%s.weight", i, n)] = []uint64{4}
		}
	}
	f := s.build(t)
	h, err := HParamsFromGGUF(f)
	require.NoError(t, err)
	require.NoError(t, CheckTensors(f, h))
	assert.True(t, h.QKNorm && h.EmbedScale && h.GELU && h.PostNorms)
	var local []int
	for i := range 7 {
		if h.LocalLayer(i) {
			local = append(local, i)
		}
	}
	assert.Equal(t, []int{0, 1, 2, 3, 4, 6}, local)
	assert.Equal(t, 10000.0, h.LayerRope(0).RopeBase)
	assert.Equal(t, "none", h.LayerRope(0).RopeScaling)
	assert.Equal(t, 1e6, h.LayerRope(5).RopeBase)
	assert.Equal(t, 8.0, h.LayerRope(5).RopeScale)

	s.extraKV = append(s.extraKV, gguf.KV{Key: "gemma3.rope.freq_base_swa", Value: float32(20000)})
	f = s.build(t)
	h, err = HParamsFromGGUF(f)
	require.NoError(t, err)
	assert.Equal(t, 20000.0, h.LayerRope(0).RopeBase)
	assert.Empty(t, IgnoredKeys(f))

	s.extraKV = append(s.extraKV, gguf.KV{Key: "gemma3.final_logit_softcapping", Value: float32(30)})
	_, err = HParamsFromGGUF(s.build(t))
	require.ErrorContains(t, err, "final-logit softcapping is unsupported")
}
