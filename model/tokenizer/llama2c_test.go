package tokenizer

import (
	"bytes"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/internal/shareddata"
)

func loadTok512(t testing.TB) Tokenizer {
	t.Helper()
	v, err := ReadLlama2c(shareddata.Path(t, "models/tok512.bin"))
	require.NoError(t, err)
	tok, err := New(v)
	require.NoError(t, err)
	return tok
}

// readGreedy256 returns llama2.c's greedy continuation of BOS by
// stories260K: its ids and its text. The text file holds what run.c
// prints, which ends with the newline run.c writes after generating, so
// that newline is not part of the tokens' text.
func readGreedy256(t *testing.T) ([]int32, string) {
	t.Helper()
	raw, err := os.ReadFile(shareddata.Path(t, "models/stories260K.greedy256.tokens"))
	require.NoError(t, err)
	var ids []int32
	for _, f := range strings.Fields(string(raw)) {
		id, err := strconv.ParseInt(f, 10, 32)
		require.NoError(t, err)
		ids = append(ids, int32(id))
	}
	require.Len(t, ids, 256)
	text, err := os.ReadFile(shareddata.Path(t, "models/stories260K.greedy256.txt"))
	require.NoError(t, err)
	require.True(t, bytes.HasSuffix(text, []byte("\n")))
	return ids, strings.TrimSuffix(string(text), "\n")
}

func TestStories260KTokenizer(t *testing.T) {
	tok := loadTok512(t)
	ids, text := readGreedy256(t)
	assert.Equal(t, 512, tok.VocabSize())
	assert.Equal(t, int32(1), tok.BOS())
	assert.Equal(t, int32(2), tok.EOS())

	got, err := tok.Decode(ids)
	require.NoError(t, err)
	assert.Equal(t, text, got, "decode of the greedy tokens")

	enc, err := tok.Encode(text, false)
	require.NoError(t, err)
	assert.Equal(t, ids, enc, "encode of the greedy text gives the generated tokens back")

	withBOS, err := tok.Encode(text, true)
	require.NoError(t, err)
	assert.Equal(t, append([]int32{1}, ids...), withBOS)

	// Streaming from BOS, as llama2.c's run prints it.
	assert.Equal(t, text, streamDecode(t, tok, withBOS))

	// llama.cpp's SentencePiece encoder on the GGUF conversion agrees.
	spm := loadGGUF(t, shareddata.Path(t, "models/stories260K.gguf"))
	enc, err = spm.Encode(text, false)
	require.NoError(t, err)
	assert.Equal(t, ids, enc, "stories260K.gguf through the SentencePiece encoder")
}

// TestLlama2cAgreesWithSPM encodes real in-domain text with llama2.c's
// encoder (tok512.bin) and llama.cpp's (stories260K.gguf): the two
// algorithms must give the same ids on the same vocabulary.
func TestLlama2cAgreesWithSPM(t *testing.T) {
	raw, err := os.ReadFile(shareddata.Path(t, "text/tinystories-valid-a.txt"))
	require.NoError(t, err)
	text := string(raw[:min(len(raw), 100_000)])
	text = strings.ToValidUTF8(text, "")

	a, err := loadTok512(t).Encode(text, true)
	require.NoError(t, err)
	b, err := loadGGUF(t, shareddata.Path(t, "models/stories260K.gguf")).Encode(text, true)
	require.NoError(t, err)
	require.Equal(t, len(a), len(b))
	assert.True(t, slicesEqual(a, b), "ids differ")

	back, err := loadTok512(t).Decode(a)
	require.NoError(t, err)
	assert.True(t, back == text, "round trip differs")
}

func slicesEqual(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// writeLlama2c builds a tokenizer.bin image.
func writeLlama2c(maxLen int32, tokens []string, scores []float32) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, maxLen)
	for i, s := range tokens {
		binary.Write(&b, binary.LittleEndian, scores[i])
		binary.Write(&b, binary.LittleEndian, int32(len(s)))
		b.WriteString(s)
	}
	return b.Bytes()
}

// llama2cTokens is a minimal llama2.c vocabulary: specials, bytes, and a
// few merges.
func llama2cTokens() ([]string, []float32) {
	tokens := []string{"<unk>", "\n<s>\n", "\n</s>\n"}
	for b := range 256 {
		tokens = append(tokens, byteTokenText(byte(b)))
	}
	tokens = append(tokens, " ", "a", "b", " a", "ab", " ab", "é", " b")
	scores := make([]float32, len(tokens))
	scores[262] = -1    // " a"
	scores[263] = -0.5  // "ab": merged before " a"
	scores[264] = -2    // " ab"
	scores[265] = -1e11 // "é": below llama2.c's floor, but a whole code point needs no merge
	scores[266] = -1e10 // " b": at the floor, so never merged
	return tokens, scores
}

func TestLlama2cEncoder(t *testing.T) {
	tokens, scores := llama2cTokens()
	v, err := ParseLlama2c(bytes.NewReader(writeLlama2c(5, tokens, scores)))
	require.NoError(t, err)
	assert.Equal(t, TypeUnknown, v.Types[0])
	assert.Equal(t, TypeControl, v.Types[1])
	assert.Equal(t, TypeByte, v.Types[3])
	assert.Equal(t, TypeNormal, v.Types[259])
	tok, err := New(v)
	require.NoError(t, err)

	for _, tt := range []struct {
		text string
		bos  bool
		want []int32
	}{
		{"", false, []int32{}},
		{"", true, []int32{1}},
		{"ab", false, []int32{264}},                         // "ab" first, then " " + "ab"
		{"b", true, []int32{1, 259, 261}},                   // " b" scores too low
		{"aé", false, []int32{262, 265}},                    // " a", then "é" as a whole code point
		{"\u00e8", false, []int32{259, 3 + 0xC3, 3 + 0xA8}}, // byte fallback: id byte+3
	} {
		got, err := tok.Encode(tt.text, tt.bos)
		require.NoError(t, err)
		assert.Equal(t, tt.want, nonNil(got), "%q", tt.text)
		back, err := tok.Decode(got)
		require.NoError(t, err)
		assert.Equal(t, tt.text, back)
	}
}

func TestParseLlama2cErrors(t *testing.T) {
	tokens, scores := llama2cTokens()
	good := writeLlama2c(5, tokens, scores)
	negative := writeLlama2c(5, tokens[:4], scores[:4])
	binary.LittleEndian.PutUint32(negative[len(negative)-10:], 0xFFFFFFFF) // last token's length
	for name, data := range map[string][]byte{
		"empty":           nil,
		"short header":    good[:2],
		"cut in a score":  good[:6],
		"cut in a length": good[:10],
		"cut in the text": good[:14],
		"negative length": negative,
		"too few tokens":  writeLlama2c(5, tokens[:2], scores[:2]),
	} {
		_, err := ParseLlama2c(bytes.NewReader(data))
		assert.Error(t, err, name)
	}
	_, err := ReadLlama2c(t.TempDir() + "/missing.bin")
	assert.ErrorContains(t, err, "missing.bin")
}

// TestLlama2cEncodeSpecial: control tokens written in the text become their
// ids only through EncodeSpecial, and the text around them is encoded as
// Encode would encode it alone.
func TestLlama2cEncodeSpecial(t *testing.T) {
	v, err := ReadLlama2c(shareddata.Path(t, "models/tok512.bin"))
	require.NoError(t, err)
	tok, err := New(v)
	require.NoError(t, err)
	once, err := tok.Encode("Once upon", false)
	require.NoError(t, err)
	end, err := tok.Encode("The end.", false)
	require.NoError(t, err)
	// llama2.c stores BOS and EOS as "\n<s>\n" and "\n</s>\n".
	got, err := tok.EncodeSpecial(tok.Piece(1)+"Once upon"+tok.Piece(2)+"The end.", false)
	require.NoError(t, err)
	want := append(append(append([]int32{1}, once...), 2), end...)
	assert.Equal(t, want, got)
	plain, err := tok.Encode(tok.Piece(1)+"Once upon", false)
	require.NoError(t, err)
	assert.NotContains(t, plain, int32(1))
	same, err := tok.EncodeSpecial("Once upon", true)
	require.NoError(t, err)
	assert.Equal(t, append([]int32{1}, once...), same[:1+len(once)])
}
