package llama2c

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/model/gguf"
)

// ckBuilder writes a checkpoint in run.c's order, tensor by tensor, from a
// list of (name, count) kept by the test: an independent statement of the
// layout that ParseCheckpoint implements.
type ckBuilder struct {
	buf    bytes.Buffer
	values map[string][]float32
	rng    *rand.Rand
}

func (b *ckBuilder) i32(v int32) { b.buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(v))) }

func (b *ckBuilder) tensor(name string, n int) {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(b.rng.NormFloat64())
		b.buf.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(v[i])))
	}
	b.values[name] = v
}

// buildCheckpoint returns a random checkpoint file for c and each tensor's
// values keyed "name" or "name/layer".
func buildCheckpoint(c Config, seed uint64) ([]byte, map[string][]float32) {
	b := &ckBuilder{values: map[string][]float32{}, rng: rand.New(rand.NewPCG(seed, seed))}
	vocab := int32(c.VocabSize)
	if !c.SharedClassifier {
		vocab = -vocab
	}
	for _, v := range []int32{int32(c.Dim), int32(c.HiddenDim), int32(c.Layers), int32(c.Heads), int32(c.KVHeads), vocab, int32(c.SeqLen)} {
		b.i32(v)
	}
	hs := c.Dim / c.Heads
	kv := c.KVHeads * hs
	b.tensor("token_embedding_table", c.VocabSize*c.Dim)
	for _, t := range []struct {
		name string
		n    int
	}{
		{"rms_att_weight", c.Dim}, {"wq", c.Dim * c.Dim}, {"wk", c.Dim * kv}, {"wv", c.Dim * kv},
		{"wo", c.Dim * c.Dim}, {"rms_ffn_weight", c.Dim}, {"w1", c.Dim * c.HiddenDim},
		{"w2", c.HiddenDim * c.Dim}, {"w3", c.Dim * c.HiddenDim},
	} {
		for l := range c.Layers {
			b.tensor(t.name+"/"+string(rune('0'+l)), t.n)
		}
	}
	b.tensor("rms_final_weight", c.Dim)
	b.tensor("freq_cis_real", c.SeqLen*hs/2)
	b.tensor("freq_cis_imag", c.SeqLen*hs/2)
	if !c.SharedClassifier {
		b.tensor("wcls", c.VocabSize*c.Dim)
	}
	return b.buf.Bytes(), b.values
}

var tinyConfig = Config{Dim: 16, HiddenDim: 40, Layers: 3, Heads: 4, KVHeads: 2, VocabSize: 11, SeqLen: 6, SharedClassifier: true}

func TestParseCheckpointLayout(t *testing.T) {
	for _, shared := range []bool{true, false} {
		c := tinyConfig
		c.SharedClassifier = shared
		data, want := buildCheckpoint(c, 1)
		ck, err := ParseCheckpoint(data)
		require.NoError(t, err)
		assert.Equal(t, c, ck.Config)
		assert.Equal(t, want["token_embedding_table"], ck.TokenEmbedding)
		assert.Equal(t, want["rms_final_weight"], ck.RMSFinal)
		require.Len(t, ck.Layers, c.Layers)
		for l, layer := range ck.Layers {
			s := "/" + string(rune('0'+l))
			assert.Equal(t, want["rms_att_weight"+s], layer.RMSAtt)
			assert.Equal(t, want["wq"+s], layer.WQ)
			assert.Equal(t, want["wk"+s], layer.WK)
			assert.Equal(t, want["wv"+s], layer.WV)
			assert.Equal(t, want["wo"+s], layer.WO)
			assert.Equal(t, want["rms_ffn_weight"+s], layer.RMSFFN)
			assert.Equal(t, want["w1"+s], layer.W1)
			assert.Equal(t, want["w2"+s], layer.W2)
			assert.Equal(t, want["w3"+s], layer.W3)
		}
		if shared {
			assert.Nil(t, ck.Classifier)
		} else {
			assert.Equal(t, want["wcls"], ck.Classifier)
		}
	}
}

func header(vals ...int32) []byte {
	var b []byte
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}

func TestParseCheckpointRejects(t *testing.T) {
	good, _ := buildCheckpoint(tinyConfig, 2)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"short header", good[:20], "header"},
		{"zero dim", header(0, 40, 3, 4, 2, 11, 6), "dim 0"},
		{"negative layers", header(16, 40, -3, 4, 2, 11, 6), "n_layers -3"},
		{"heads", header(16, 40, 3, 5, 5, 11, 6), "n_heads 5 does not divide dim 16"},
		{"kv heads", header(16, 40, 3, 4, 3, 11, 6), "n_kv_heads 3 does not divide n_heads 4"},
		{"odd head", header(12, 40, 3, 4, 2, 11, 6), "odd"},
		{"huge", append(header(1<<30, 1<<30, 1<<30, 1<<20, 1<<20, 1<<30, 1<<30), 0, 0, 0, 0), "impossibly large"},
		{"truncated", good[:len(good)-4], "implies"},
		{"trailing", append(bytes.Clone(good), 0, 0, 0, 0), "implies"},
		{"ragged", append(bytes.Clone(good), 0), "implies"},
		{"missing classifier", append(header(16, 40, 3, 4, 2, -11, 6), good[28:]...), "implies"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseCheckpoint(c.data)
			assert.ErrorContains(t, err, c.want)
		})
	}
}

func tokenizerBytes(maxLen int32, tokens []string, scores []float32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(maxLen))
	for i, s := range tokens {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(scores[i]))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

func TestParseTokenizer(t *testing.T) {
	tokens := []string{"<unk>", "\n<s>\n", "\n</s>\n", "<0x0A>", " the", "", "é"}
	scores := []float32{0, 0, 0, 0, -1.5, -2, -3}
	tok, err := ParseTokenizer(tokenizerBytes(6, tokens, scores), len(tokens))
	require.NoError(t, err)
	assert.Equal(t, 6, tok.MaxTokenLength)
	assert.Equal(t, tokens, tok.Tokens)
	assert.Equal(t, scores, tok.Scores)
}

func TestParseTokenizerRejects(t *testing.T) {
	good := tokenizerBytes(3, []string{"a", "bc"}, []float32{1, 2})
	cases := []struct {
		name  string
		data  []byte
		vocab int
		want  string
	}{
		{"empty", nil, 2, "no header"},
		{"too many", good, 1000, "cannot fit"},
		{"zero vocab", good, 0, "cannot fit"},
		{"trailing", good, 1, "bytes after token 0"},
		{"truncated", good[:len(good)-1], 2, "token 1: length 2"},
		{"negative length", tokenizerBytes(3, []string{"a"}, []float32{0})[:8], 1, ""},
	}
	cases[5].data = append(binary.LittleEndian.AppendUint32(nil, 3), header(0, -5)...)
	cases[5].want = "token 0: length -5"
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseTokenizer(c.data, c.vocab)
			assert.ErrorContains(t, err, c.want)
		})
	}
}

func TestConvertSynthetic(t *testing.T) {
	c := tinyConfig
	c.SharedClassifier = false
	data, want := buildCheckpoint(c, 3)
	ck, err := ParseCheckpoint(data)
	require.NoError(t, err)
	tokens := []string{"<unk>", "\n<s>\n", "\n</s>\n", "<0x00>", "<0xFF>", " a", "b c", "<0x1>", "x", "yy", " "}
	scores := make([]float32, len(tokens))
	for i := range scores {
		scores[i] = -float32(i)
	}
	var out bytes.Buffer
	require.NoError(t, Convert(&out, ck, &Tokenizer{MaxTokenLength: 6, Tokens: tokens, Scores: scores}))
	f, err := gguf.Parse(out.Bytes())
	require.NoError(t, err)

	for key, v := range map[string]uint64{
		"llama.context_length": 6, "llama.embedding_length": 16, "llama.block_count": 3,
		"llama.feed_forward_length": 40, "llama.attention.head_count": 4,
		"llama.attention.head_count_kv": 2, "llama.rope.dimension_count": 4,
		"tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
	} {
		got, err := f.Uint(key)
		require.NoError(t, err, key)
		assert.Equal(t, v, got, key)
	}
	gotTokens, err := f.Strings("tokenizer.ggml.tokens")
	require.NoError(t, err)
	assert.Equal(t, []string{"<unk>", "<s>", "</s>", "<0x00>", "<0xFF>", "▁a", "b▁c", "<0x1>", "x", "yy", "▁"}, gotTokens)
	types, err := f.Ints("tokenizer.ggml.token_type")
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1}, types)
	gotScores, err := f.Float32s("tokenizer.ggml.scores")
	require.NoError(t, err)
	assert.Equal(t, scores, gotScores)

	// Every llama2.c weight lands under its llama.cpp name with dims {cols, rows}.
	hs := c.Dim / c.Heads
	check := func(name, src string, dims ...uint64) {
		t.Helper()
		info, ok := f.Tensor(name)
		require.True(t, ok, name)
		assert.Equal(t, dims, info.Dims, name)
		data, err := f.TensorData(info)
		require.NoError(t, err)
		vals := make([]float32, len(data)/4)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		assert.Equal(t, want[src], vals, name)
	}
	d, h, kv, v := uint64(c.Dim), uint64(c.HiddenDim), uint64(c.KVHeads*hs), uint64(c.VocabSize)
	check("token_embd.weight", "token_embedding_table", d, v)
	check("output.weight", "wcls", d, v)
	check("output_norm.weight", "rms_final_weight", d)
	for l := range c.Layers {
		p, s := "blk."+string(rune('0'+l))+".", "/"+string(rune('0'+l))
		check(p+"attn_norm.weight", "rms_att_weight"+s, d)
		check(p+"attn_q.weight", "wq"+s, d, d)
		check(p+"attn_k.weight", "wk"+s, d, kv)
		check(p+"attn_v.weight", "wv"+s, d, kv)
		check(p+"attn_output.weight", "wo"+s, d, d)
		check(p+"ffn_norm.weight", "rms_ffn_weight"+s, d)
		check(p+"ffn_gate.weight", "w1"+s, d, h)
		check(p+"ffn_down.weight", "w2"+s, h, d)
		check(p+"ffn_up.weight", "w3"+s, d, h)
	}
	assert.Len(t, f.Tensors, 3+9*c.Layers)
}

func TestConvertRejectsMismatchedTokenizer(t *testing.T) {
	data, _ := buildCheckpoint(tinyConfig, 4)
	ck, err := ParseCheckpoint(data)
	require.NoError(t, err)
	err = Convert(&bytes.Buffer{}, ck, &Tokenizer{Tokens: []string{"a"}, Scores: []float32{0}})
	assert.ErrorContains(t, err, "tokenizer has 1 tokens")
	ck.Layers[1].WK = ck.Layers[1].WK[:3]
	toks := make([]string, 11)
	err = Convert(&bytes.Buffer{}, ck, &Tokenizer{Tokens: toks, Scores: make([]float32, 11)})
	assert.ErrorContains(t, err, "blk.1.attn_k.weight has 3 weights")
}
