package tokenizer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewRejectsBadVocabularies(t *testing.T) {
	tests := []struct {
		name   string
		change func(v *Vocab)
		err    string
	}{
		{"no tokens", func(v *Vocab) { v.Tokens, v.Scores, v.Types = nil, nil, nil }, "no tokens"},
		{"scores", func(v *Vocab) { v.Scores = v.Scores[1:] }, "scores for"},
		{"types", func(v *Vocab) { v.Types = append(v.Types, TypeNormal) }, "token types for"},
		{"BOS range", func(v *Vocab) { v.BOS = int32(len(v.Tokens)) }, "BOS id"},
		{"EOS range", func(v *Vocab) { v.EOS = -2 }, "EOS id"},
		{"UNK range", func(v *Vocab) { v.UNK = 1 << 20 }, "UNK id"},
		{"PAD range", func(v *Vocab) { v.PAD = -7 }, "PAD id"},
		{"AddBOS without BOS", func(v *Vocab) { v.BOS = -1 }, "no BOS"},
		{"duplicate", func(v *Vocab) { v.Tokens[len(v.Tokens)-1] = "a" }, `token "a" has ids`},
		{"model", func(v *Vocab) { v.Model = "bert" }, "unsupported model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := spmVocab()
			tt.change(v)
			_, err := New(v)
			assert.ErrorContains(t, err, tt.err)
		})
	}
	_, err := New(nil)
	assert.Error(t, err)

	bpeBad := bpeVocab()
	bpeBad.Pre = "no-such-pre"
	_, err = New(bpeBad)
	assert.ErrorContains(t, err, `unsupported pre-tokenizer "no-such-pre"`)
	bpeBad = bpeVocab()
	bpeBad.Merges = nil
	_, err = New(bpeBad)
	assert.ErrorContains(t, err, "no merges")

	l2c := spmVocab()
	l2c.Model = ModelLlama2c
	_, err = New(l2c)
	assert.ErrorContains(t, err, `no " " token`)
	l2c.Tokens = l2c.Tokens[:100]
	l2c.Types, l2c.Scores = l2c.Types[:100], l2c.Scores[:100]
	_, err = New(l2c)
	assert.ErrorContains(t, err, "want at least 259")
}

func TestEncodeBOS(t *testing.T) {
	v := spmVocab()
	v.BOS, v.AddBOS = -1, false
	tok, err := New(v)
	require.NoError(t, err)
	assert.Equal(t, int32(-1), tok.BOS())
	assert.False(t, tok.AddBOS())
	_, err = tok.Encode("a", true)
	assert.ErrorContains(t, err, "no BOS")
	ids, err := tok.Encode("a", false)
	require.NoError(t, err)
	assert.Len(t, ids, 1)
}

// bpeVocab is a tiny byte-level vocabulary (Ġ is the space).
func bpeVocab() *Vocab {
	return &Vocab{
		Model:  ModelBPE,
		Pre:    "gpt-2",
		Tokens: []string{"a", "b", "c", "ab", "abc", "Ġ", "Ġa", "Ġab", "  ", "<|endoftext|>"},
		Types: []int32{TypeNormal, TypeNormal, TypeNormal, TypeNormal, TypeNormal, TypeNormal,
			TypeNormal, TypeNormal, TypeUserDefined, TypeUserDefined},
		Merges: []string{"a b", "ab c", "Ġ a", "malformed"},
		BOS:    -1, EOS: 9, UNK: -1, PAD: -1,
	}
}

func TestBPEEncode(t *testing.T) {
	tok, err := New(bpeVocab())
	require.NoError(t, err)
	for _, tt := range []struct {
		text string
		want []int32
	}{
		{"", []int32{}},
		{"abc", []int32{4}},          // a+b (rank 0), then ab+c (rank 1)
		{"abc ab", []int32{4, 5, 3}}, // "Ġab": a+b outranks Ġ+a, and "Ġ ab" is no merge
		{"d", []int32{}},             // no token, no byte token: dropped as llama.cpp does
		{"a  b", []int32{0, 8, 1}},   // the user-defined "  " is split out first
		// "<|endoftext|>" is control-looking, hence control, hence not parsed.
		{"<|endoftext|>", []int32{}},
	} {
		got, err := tok.Encode(tt.text, false)
		require.NoError(t, err)
		assert.Equal(t, tt.want, nonNil(got), "%q", tt.text)
	}

	text, err := tok.Decode([]int32{4, 7, 8, 9, 5})
	require.NoError(t, err)
	assert.Equal(t, "abc ab   ", text, "no space is dropped, control tokens vanish")
	assert.Equal(t, "<|endoftext|>", tok.Piece(9))

	// Llama 3 style pre-tokenizers take a word that is a token as it is.
	v := bpeVocab()
	v.Pre = "llama-bpe"
	tok, err = New(v)
	require.NoError(t, err)
	got, err := tok.Encode(" ab", false)
	require.NoError(t, err)
	assert.Equal(t, []int32{7}, got)
}

func TestByteLevelAlphabet(t *testing.T) {
	assert.Equal(t, "Ġ", byteRunes[' '])
	assert.Equal(t, "Ċ", byteRunes['\n'])
	assert.Equal(t, "a", byteRunes['a'])
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	enc := appendByteLevel(nil, string(all))
	assert.Equal(t, string(all), fromByteLevel(string(enc)))
	assert.Equal(t, "x→", fromByteLevel("x→"), "runes outside the alphabet are kept")
}

func TestDecoderHoldsIncompleteCharacters(t *testing.T) {
	v := spmVocab()
	id := func(p string) int32 { return spmID(t, v, p) }
	tok, err := New(v)
	require.NoError(t, err)
	byteID := func(b byte) int32 { return 3 + int32(b) }

	d := tok.NewDecoder()
	var got []string
	for _, x := range []int32{1, id("▁a"), byteID(0xF0), byteID(0x9F), byteID(0xA6), byteID(0x99), id("b")} {
		s, err := d.Add(x)
		require.NoError(t, err)
		got = append(got, s)
	}
	assert.Equal(t, []string{"", "a", "", "", "", "🦙", "b"}, got)
	assert.Equal(t, "", d.Flush())

	// Bytes that can never form a character pass straight through.
	d = tok.NewDecoder()
	s, err := d.Add(byteID(0xFF))
	require.NoError(t, err)
	assert.Equal(t, "\xff", s)
	s, _ = d.Add(byteID(0xE2))
	assert.Equal(t, "", s)
	s, _ = d.Add(id("a"))
	assert.Equal(t, "\xe2a", s, "a broken character is released once it cannot complete")
	s, _ = d.Add(byteID(0xE2))
	assert.Equal(t, "", s)
	_, err = d.Add(12345)
	assert.Error(t, err)
	assert.Equal(t, "\xe2", d.Flush(), "Flush releases what is held")
	assert.Equal(t, "", d.Flush())
}

// TestDecoderMatchesDecode streams random id sequences and compares with
// Decode.
func TestDecoderMatchesDecode(t *testing.T) {
	tok, err := New(spmVocab())
	require.NoError(t, err)
	n := int32(tok.VocabSize())
	seed := uint32(1)
	next := func() int32 { seed = seed*1664525 + 1013904223; return int32(seed>>8) % n }
	for range 200 {
		ids := make([]int32, int(next()%12))
		for i := range ids {
			ids[i] = next()
		}
		want, err := tok.Decode(ids)
		require.NoError(t, err)
		d := tok.NewDecoder()
		var b strings.Builder
		for _, x := range ids {
			s, err := d.Add(x)
			require.NoError(t, err)
			b.WriteString(s)
		}
		b.WriteString(d.Flush())
		require.Equal(t, want, b.String(), "%v", ids)
	}
}
