package tokenizer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/model/gguf"
)

// vectorCase is one of llama.cpp's tokenizer test vectors.
type vectorCase struct {
	text string
	ids  []int32
}

// readVectors parses a .inp/.out pair the way llama.cpp's test-tokenizer-0
// does: inputs are separated by "\n__ggml_vocab_test__\n" (so an input does
// not include the newline before the separator), outputs are one line of
// space-separated ids per input.
func readVectors(t *testing.T, inpPath, outPath string) []vectorCase {
	t.Helper()
	inp, err := os.ReadFile(inpPath)
	require.NoError(t, err)
	out, err := os.ReadFile(outPath)
	require.NoError(t, err)

	const sep = "\n__ggml_vocab_test__\n"
	var inputs []string
	for raw := string(inp); raw != ""; {
		i := strings.Index(raw, sep)
		if i < 0 {
			inputs = append(inputs, raw)
			break
		}
		inputs = append(inputs, raw[:i])
		raw = raw[i+len(sep):]
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	require.Len(t, lines, len(inputs), "%s: one output line per input", filepath.Base(outPath))

	cases := make([]vectorCase, len(inputs))
	for i, line := range lines {
		cases[i] = vectorCase{text: inputs[i], ids: []int32{}}
		for _, f := range strings.Fields(line) {
			id, err := strconv.ParseInt(f, 10, 32)
			require.NoError(t, err, "%s line %d", filepath.Base(outPath), i+1)
			cases[i].ids = append(cases[i].ids, int32(id))
		}
	}
	return cases
}

func loadGGUF(t testing.TB, path string) Tokenizer {
	t.Helper()
	f, err := gguf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	v, err := FromGGUF(f)
	require.NoError(t, err)
	tok, err := New(v)
	require.NoError(t, err)
	return tok
}

func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}

// streamDecode decodes ids one at a time, checking that the Decoder never
// splits a character of valid text.
func streamDecode(t *testing.T, tok Tokenizer, ids []int32) string {
	t.Helper()
	d := tok.NewDecoder()
	var b strings.Builder
	for _, id := range ids {
		s, err := d.Add(id)
		require.NoError(t, err)
		b.WriteString(s)
	}
	b.WriteString(d.Flush())
	if utf8.ValidString(b.String()) {
		// Then every chunk must have been whole characters.
		d = tok.NewDecoder()
		for _, id := range ids {
			s, _ := d.Add(id)
			require.True(t, utf8.ValidString(s), "decoder emitted a broken character: %q", s)
		}
	}
	return b.String()
}

// TestLlamaCppVectors checks every shared vocabulary that has test vectors:
// the ids must match llama.cpp's exactly (no BOS, no special-token parsing),
// and decoding, whole or streamed, must give the input back.
func TestLlamaCppVectors(t *testing.T) {
	dir := shareddata.Path(t, "vocab")
	inps, err := filepath.Glob(filepath.Join(dir, "ggml-vocab-*.gguf.inp"))
	require.NoError(t, err)
	require.NotEmpty(t, inps, "no test vectors in %s", dir)

	for _, inp := range inps {
		vocabPath := strings.TrimSuffix(inp, ".inp")
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(vocabPath), "ggml-vocab-"), ".gguf")
		t.Run(name, func(t *testing.T) {
			tok := loadGGUF(t, vocabPath)
			cases := readVectors(t, inp, vocabPath+".out")
			for i, c := range cases {
				got, err := tok.Encode(c.text, false)
				require.NoError(t, err, "input %d %q", i, c.text)
				assert.Equal(t, c.ids, nonNil(got), "input %d %q", i, c.text)

				text, err := tok.Decode(got)
				require.NoError(t, err)
				assert.Equal(t, c.text, text, "decode of input %d", i)
				assert.Equal(t, text, streamDecode(t, tok, got), "streamed decode of input %d", i)
			}
			t.Logf("%d inputs", len(cases))
		})
	}
}

// TestLlama2TinyRandomVocab runs the LLaMA SentencePiece vectors on the
// full LLaMA-2 vocabulary carried by llama-2-tiny-random.gguf, and checks
// its special tokens.
func TestLlama2TinyRandomVocab(t *testing.T) {
	tok := loadGGUF(t, shareddata.Path(t, "models/llama-2-tiny-random.gguf"))
	assert.Equal(t, 32000, tok.VocabSize())
	assert.Equal(t, int32(1), tok.BOS())
	assert.Equal(t, int32(2), tok.EOS())
	assert.True(t, tok.AddBOS(), "SentencePiece vocabularies add BOS by default")
	assert.Equal(t, "<s>", tok.Piece(1))
	assert.Equal(t, "\n", tok.Piece(13), "byte token <0x0A>")
	assert.Equal(t, " Hello", tok.Piece(15043))

	inp := shareddata.Path(t, "vocab/ggml-vocab-llama-spm.gguf.inp")
	for i, c := range readVectors(t, inp, strings.TrimSuffix(inp, ".inp")+".out") {
		got, err := tok.Encode(c.text, false)
		require.NoError(t, err)
		assert.Equal(t, c.ids, nonNil(got), "input %d %q", i, c.text)
	}

	ids, err := tok.Encode("Hello world", true)
	require.NoError(t, err)
	assert.Equal(t, []int32{1, 15043, 3186}, ids)
	text, err := tok.Decode(ids)
	require.NoError(t, err)
	assert.Equal(t, "Hello world", text, "BOS decodes to nothing, the space prefix is dropped")
}

// TestLongTextRoundTrip encodes and decodes a long out-of-domain text with
// a SentencePiece and a byte-level vocabulary.
func TestLongTextRoundTrip(t *testing.T) {
	raw, err := os.ReadFile(shareddata.Path(t, "text/war-and-peace.txt"))
	require.NoError(t, err)
	text := string(raw[:min(len(raw), 200_000)])
	text = strings.ToValidUTF8(text, "") // the cut may split a character
	for _, name := range []string{"llama-spm", "gpt-2"} {
		tok := loadGGUF(t, shareddata.Path(t, "vocab/ggml-vocab-"+name+".gguf"))
		ids, err := tok.Encode(text, false)
		require.NoError(t, err)
		got, err := tok.Decode(ids)
		require.NoError(t, err)
		assert.True(t, got == text, "%s: round trip differs", name)
	}
}

// TestGGUFSettings checks the settings FromGGUF reads or defaults.
func TestGGUFSettings(t *testing.T) {
	tests := []struct {
		file           string
		model, pre     string
		bos, eos, pad  int32
		addBOS, prefix bool
	}{
		{"vocab/ggml-vocab-llama-spm.gguf", ModelSPM, "default", 1, 2, -1, true, true},
		{"vocab/ggml-vocab-gpt-2.gguf", ModelBPE, "gpt-2", 50256, 50256, -1, false, false},
		{"vocab/ggml-vocab-deepseek-coder.gguf", ModelBPE, "deepseek-coder", 32013, 32014, 32014, true, false},
		{"vocab/ggml-vocab-gpt-neox.gguf", ModelBPE, "", 0, 0, -1, false, false},
		// padding_token_id is 0xFFFFFFFF there: out of range means none.
		{"models/stories260K.gguf", ModelSPM, "", 1, 2, -1, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := gguf.Open(shareddata.Path(t, tt.file))
			require.NoError(t, err)
			defer f.Close()
			v, err := FromGGUF(f)
			require.NoError(t, err)
			assert.Equal(t, tt.model, v.Model)
			assert.Equal(t, tt.pre, v.Pre)
			assert.Equal(t, []int32{tt.bos, tt.eos, tt.pad}, []int32{v.BOS, v.EOS, v.PAD})
			assert.Equal(t, tt.addBOS, v.AddBOS)
			assert.Equal(t, tt.prefix, v.AddSpacePrefix)
			assert.False(t, v.AddEOS)
			_, err = New(v)
			require.NoError(t, err, "the vocabulary must build")
		})
	}
}
