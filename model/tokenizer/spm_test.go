package tokenizer

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// spmVocab is a small SentencePiece vocabulary: <unk>, BOS, EOS, the 256
// byte tokens, then the pieces below.
func spmVocab() *Vocab {
	v := &Vocab{
		Model:          ModelSPM,
		Tokens:         []string{"<unk>", "<s>", "</s>"},
		Types:          []int32{TypeUnknown, TypeControl, TypeControl},
		BOS:            1,
		EOS:            2,
		UNK:            0,
		PAD:            -1,
		AddBOS:         true,
		AddSpacePrefix: true,
	}
	for b := range 256 {
		v.Tokens = append(v.Tokens, byteTokenText(byte(b)))
		v.Types = append(v.Types, TypeByte)
	}
	for _, p := range []string{"▁", "a", "b", "▁a", "ab", "▁ab", "ba", "<|u|>", "<", "s", ">"} {
		v.Tokens = append(v.Tokens, p)
		v.Types = append(v.Types, TypeNormal)
	}
	v.Types[len(v.Types)-4] = TypeUserDefined // <|u|>
	v.Scores = make([]float32, len(v.Tokens))
	return v
}

// spmID finds a piece of spmVocab.
func spmID(t *testing.T, v *Vocab, piece string) int32 {
	t.Helper()
	for id, p := range v.Tokens {
		if p == piece {
			return int32(id)
		}
	}
	t.Fatalf("no piece %q", piece)
	return -1
}

func TestSPMMergesByScore(t *testing.T) {
	v := spmVocab()
	id := func(p string) int32 { return spmID(t, v, p) }
	setScore := func(p string, s float32) { v.Scores[id(p)] = s }

	// "▁a" outscores "ab": the pieces are "▁a" + "b", then "▁ab".
	setScore("▁a", -1)
	setScore("ab", -2)
	setScore("▁ab", -3)
	tok, err := New(v)
	require.NoError(t, err)
	ids, err := tok.Encode("ab", false)
	require.NoError(t, err)
	assert.Equal(t, []int32{id("▁ab")}, ids)

	// Without "▁ab" the first merge decides the split.
	v.Tokens[id("▁ab")] = "unrelated"
	tok, err = New(v)
	require.NoError(t, err)
	ids, err = tok.Encode("ab", false)
	require.NoError(t, err)
	assert.Equal(t, []int32{id("▁a"), id("b")}, ids)

	// Equal scores: the leftmost pair merges first. In "▁aba", "▁a" (left)
	// and "ba" tie; after "▁a" the rest is "b" + "a" = "ba".
	setScore("▁a", -1)
	setScore("ab", -5)
	setScore("ba", -1)
	tok, err = New(v)
	require.NoError(t, err)
	ids, err = tok.Encode("aba", false)
	require.NoError(t, err)
	assert.Equal(t, []int32{id("▁a"), id("ba")}, ids)
}

func TestSPMSpacesBytesAndSpecials(t *testing.T) {
	v := spmVocab()
	id := func(p string) int32 { return spmID(t, v, p) }
	tok, err := New(v)
	require.NoError(t, err)

	for _, tt := range []struct {
		text string
		want []int32
	}{
		{"", []int32{}},
		{" ", []int32{id("▁"), id("▁")}},
		// é is no piece: its UTF-8 bytes.
		{"é", []int32{id("▁"), 3 + 0xC3, 3 + 0xA9}},
		// A user-defined token is split out, and text after it gets the
		// space prefix again (llama.cpp treats it as following a special).
		{"a<|u|>a", []int32{id("▁a"), id("<|u|>"), id("▁a")}},
		// Control tokens written in text are not parsed.
		{"<s>", []int32{id("▁"), id("<"), id("s"), id(">")}},
	} {
		got, err := tok.Encode(tt.text, false)
		require.NoError(t, err)
		assert.Equal(t, tt.want, nonNil(got), "%q", tt.text)
	}

	ids, err := tok.Encode("a", true)
	require.NoError(t, err)
	assert.Equal(t, []int32{1, id("▁a")}, ids)

	v.AddSpacePrefix = false
	tok, err = New(v)
	require.NoError(t, err)
	ids, err = tok.Encode("a b", false)
	require.NoError(t, err)
	assert.Equal(t, []int32{id("a"), id("▁"), id("b")}, ids)
	text, err := tok.Decode(ids)
	require.NoError(t, err)
	assert.Equal(t, "a b", text)
}

func TestSPMWithoutByteTokens(t *testing.T) {
	v := &Vocab{
		Model:  ModelSPM,
		Tokens: []string{"<unk>", "<s>", "</s>", "▁", "a"},
		Types:  []int32{TypeUnknown, TypeControl, TypeControl, TypeNormal, TypeNormal},
		BOS:    1, EOS: 2, UNK: 0, PAD: -1, AddSpacePrefix: true,
	}
	tok, err := New(v)
	require.NoError(t, err)
	ids, err := tok.Encode("aé", false)
	require.NoError(t, err)
	assert.Equal(t, []int32{3, 4, 0, 0}, ids, "unknown bytes become <unk>")
	text, err := tok.Decode(ids)
	require.NoError(t, err)
	assert.Equal(t, "a", text, "<unk> decodes to nothing")
	assert.Equal(t, "<unk>", tok.Piece(0))

	v.UNK = -1
	tok, err = New(v)
	require.NoError(t, err)
	_, err = tok.Encode("é", false)
	assert.ErrorContains(t, err, "no token for byte 0xC3")
}

func TestSPMDecode(t *testing.T) {
	v := spmVocab()
	id := func(p string) int32 { return spmID(t, v, p) }
	tok, err := New(v)
	require.NoError(t, err)

	for _, tt := range []struct {
		ids  []int32
		want string
	}{
		{nil, ""},
		{[]int32{id("▁a")}, "a"},                            // space prefix dropped at the start
		{[]int32{1, id("▁a")}, "a"},                         // ... and after BOS
		{[]int32{id("a"), id("▁a")}, "a a"},                 // kept elsewhere
		{[]int32{id("▁a"), 2, 1, id("▁ab")}, "aab"},         // BOS starts over
		{[]int32{3 + 0xE2, 3 + 0x82, 3 + 0xAC}, "€"},        // bytes joined
		{[]int32{id("<|u|>"), id("▁"), id("b")}, "<|u|> b"}, // user-defined verbatim
		{[]int32{0, id("▁a")}, " a"},                        // <unk> is nothing, but not the start marker
	} {
		got, err := tok.Decode(tt.ids)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got, "%v", tt.ids)
	}
	_, err = tok.Decode([]int32{id("a"), 999})
	assert.ErrorContains(t, err, "position 1")
	_, err = tok.Decode([]int32{-1})
	assert.Error(t, err)

	assert.Equal(t, "<s>", tok.Piece(1))
	assert.Equal(t, " ab", tok.Piece(id("▁ab")))
	assert.Equal(t, "\xE2", tok.Piece(3+0xE2))
	assert.Equal(t, "", tok.Piece(-1))
	assert.Equal(t, "", tok.Piece(int32(tok.VocabSize())))
}
