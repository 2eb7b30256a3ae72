package pretok

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// splitInputs exercise contractions, letters after punctuation, digit
// groups, trailing and non-ASCII whitespace, CJK and look-alike letters
// (U+1FD3, U+212A KELVIN SIGN).
var splitInputs = []string{
	"Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
	"   Hello\n\n  x 3333333",
	"I'M 'RE \u00b9\u00b2\u00b3 x\u3000\u3000y  ",
	"\u1fd3 \u03a9\u212a-\u20ac200,000.5 \r\n\t!",
}

// wantSplits were produced by applying the upstream expressions with the
// Python regex module, llama.cpp's way (see the package comment).
var wantSplits = map[string][][]string{
	"gpt2": {
		{"Hello", ",", " y", "'", "all", "!", " How", " are", " you", " 😁", " ?", "我想在apple工作", "1314151", "天", "～"},
		{"  ", " Hello", "\n\n ", " x", " 3333333"},
		{"I", "'", "M", " '", "RE", " \u00b9\u00b2\u00b3", " x", "\u3000", "\u3000", "y", "  "},
		{"\u1fd3", " \u03a9\u212a", "-\u20ac", "200", ",", "000", ".", "5", " \r\n", "\t", "!"},
	},
	"llama3": {
		{"Hello", ",", " y", "'all", "!", " How", " are", " you", " 😁", " ?", "我想在apple工作", "131", "415", "1", "天", "～"},
		{"  ", " Hello", "\n\n", " ", " x", " ", "333", "333", "3"},
		{"I", "'M", " '", "RE", " ", "\u00b9\u00b2\u00b3", " x", "\u3000", "\u3000y", "  "},
		{"\u1fd3", " \u03a9\u212a", "-\u20ac", "200", ",", "000", ".", "5", " \r\n", "\t", "!"},
	},
	"qwen2": {
		{"Hello", ",", " y", "'all", "!", " How", " are", " you", " 😁", " ?", "我想在apple工作", "1", "3", "1", "4", "1", "5", "1", "天", "～"},
		{"  ", " Hello", "\n\n", " ", " x", " ", "3", "3", "3", "3", "3", "3", "3"},
		{"I", "'M", " '", "RE", " ", "\u00b9", "\u00b2", "\u00b3", " x", "\u3000", "\u3000y", "  "},
		{"\u1fd3", " \u03a9\u212a", "-\u20ac", "2", "0", "0", ",", "0", "0", "0", ".", "5", " \r\n", "\t", "!"},
	},
	"default": {
		{"Hello", ",", " y", "'", "all", "!", " How", " are", " you", " 😁", " ", "?", "我想在apple工作", "131", "415", "1", "天", "～"},
		{"  ", " Hello", "\n\n ", " x", " ", "333", "333", "3"},
		{"I", "'", "M", " ", "'", "RE", " ", "\u00b9\u00b2\u00b3", " x", "\u3000", "\u3000", "y", "  "},
		{"\u1fd3", " \u03a9\u212a", "-", "\u20ac", "200", ",", "000", ".", "5", " \r\n\t", "!"},
	},
	"falcon": {
		{"Hello", ",", " y", "'", "all", "!", " How", " are", " you", " 😁", " ", "?", "我想在apple工作", "131", "415", "1", "天", "～"},
		{"  ", " Hello", "\n\n ", " x", " ", "333", "333", "3"},
		{"I", "'", "M", " ", "'", "RE", " \u00b9\u00b2\u00b3", " x", "\u3000", "\u3000", "y", "  "},
		{"\u1fd3", " \u03a9\u212a", "-", "\u20ac", "200", ",", "000", ".", "5", " \r\n\t", "!"},
	},
	"starcoder": {
		{"Hello", ",", " y", "'", "all", "!", " How", " are", " you", " 😁", " ?", "我想在apple工作", "1", "3", "1", "4", "1", "5", "1", "天", "～"},
		{"  ", " Hello", "\n\n ", " x", " ", "3", "3", "3", "3", "3", "3", "3"},
		{"I", "'", "M", " '", "RE", " ", "\u00b9", "\u00b2", "\u00b3", " x", "\u3000", "\u3000", "y", "  "},
		{"\u1fd3", " \u03a9\u212a", "-\u20ac", "2", "0", "0", ",", "0", "0", "0", ".", "5", " \r\n", "\t", "!"},
	},
	"deepseek-llm": {
		{"Hello", ",", " y", "'", "all", "!", " How", " are", " you", " 😁", " ?", "我想在", "apple", "工作", "1314151", "天", "～"},
		{"  ", " Hello", "\n", "\n", " ", " x", " ", "3333333"},
		{"I", "'", "M", " '", "RE", " ", "\u00b9\u00b2\u00b3", " x", "\u3000", "\u3000y", "  "},
		{"\u1fd3", " \u03a9", "\u212a", "-", "\u20ac", "200", ",", "000", ".", "5", " ", "\r", "\n", "\t!"},
	},
	"deepseek-coder": {
		{"Hello", ",", " y", "'", "all", "!", " How", " are", " you", " 😁", " ?", "我想在", "apple", "工作", "1", "3", "1", "4", "1", "5", "1", "天", "～"},
		{"  ", " Hello", "\n", "\n", " ", " x", " ", "3", "3", "3", "3", "3", "3", "3"},
		{"I", "'", "M", " '", "RE", " ", "\u00b9", "\u00b2", "\u00b3", " x", "\u3000", "\u3000y", "  "},
		{"\u1fd3", " \u03a9", "\u212a", "-", "\u20ac", "2", "0", "0", ",", "0", "0", "0", ".", "5", " ", "\r", "\n", "\t!"},
	},
}

func TestSplit(t *testing.T) {
	for name, want := range wantSplits {
		s, err := New(name)
		require.NoError(t, err)
		for i, in := range splitInputs {
			assert.Equal(t, want[i], s.Split(in), "%s: %q", name, in)
		}
	}
}

func TestNew(t *testing.T) {
	for pre, pipeline := range map[string]string{
		"": "default", "default": "default", "gpt-2": "gpt2", "mpt": "gpt2",
		"llama-bpe": "llama3", "qwen2": "qwen2", "starcoder": "starcoder", "refact": "starcoder",
		"falcon": "falcon", "deepseek-llm": "deepseek-llm", "deepseek-coder": "deepseek-coder",
	} {
		s, err := New(pre)
		require.NoError(t, err, pre)
		assert.Equal(t, pipeline, s.Name(), pre)
	}
	_, err := New("tekken")
	assert.ErrorContains(t, err, `unsupported pre-tokenizer "tekken"`)
	assert.Contains(t, Names(), "llama-bpe")
	assert.NotContains(t, Names(), "")
}

func TestSplitReadsUTF8AsLlamaCpp(t *testing.T) {
	s, err := New("gpt2")
	require.NoError(t, err)
	assert.Nil(t, s.Split(""))
	// A stray byte becomes U+FFFD, a surrogate keeps its three bytes, and an
	// overlong NUL is read as the NUL it spells.
	assert.Equal(t, []string{"a", "\uFFFD", "b"}, s.Split("a\xffb"))
	assert.Equal(t, []string{"\xed\xa0\x80"}, s.Split("\xed\xa0\x80"))
	assert.Equal(t, []string{"\x00"}, s.Split("\xc0\x80"))
	assert.Equal(t, []string{"\uFFFD\uFFFD", "a"}, s.Split("\xe2\x96a"), "a cut sequence: two U+FFFD")
}

func TestClassMergesOverlaps(t *testing.T) {
	c := newClass(runeRange{10, 20}, runeRange{0, 5}, runeRange{15, 30}, runeRange{6, 7})
	assert.Equal(t, charClass{{0, 7}, {10, 30}}, c)
	for r, in := range map[rune]bool{0: true, 7: true, 8: false, 10: true, 30: true, 31: false, -1: false} {
		assert.Equal(t, in, c.has(r), "%d", r)
	}
}

// FuzzSplit checks that every pipeline splits any valid text into non-empty
// words that concatenate back to it, and never fails on invalid text.
func FuzzSplit(f *testing.F) {
	for _, in := range splitInputs {
		f.Add(in)
	}
	f.Add("a\xff\xed\xa0\x80\xc0\x80 \U0010FFFF\xf4\x90\x80\x80")
	splitters := make([]*Splitter, 0, len(pipelines))
	for name := range pipelines {
		s, err := New(name)
		require.NoError(f, err)
		splitters = append(splitters, s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, s := range splitters {
			words := s.Split(text)
			for _, w := range words {
				require.NotEmpty(t, w, s.Name())
			}
			if utf8.ValidString(text) {
				require.Equal(t, text, strings.Join(words, ""), s.Name())
			}
		}
	})
}
