package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/tokenizer"
	"github.com/stretchr/testify/require"
)

// TestContinuationKeepsSpace: what generate streams after a prompt is the
// text the tokens continue it with, leading space included, for
// SentencePiece, llama2.c and byte-level BPE vocabularies.
func TestContinuationKeepsSpace(t *testing.T) {
	toks := map[string]tokenizer.Tokenizer{}
	for _, name := range []string{"vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-gpt-2.gguf", "models/stories260K.gguf"} {
		f, err := gguf.Open(shareddata.Path(t, name))
		require.NoError(t, err)
		toks[name], err = llama.LoadTokenizer(f)
		require.NoError(t, err)
		f.Close()
	}
	v, err := tokenizer.ReadLlama2c(shareddata.Path(t, "models/tok512.bin"))
	require.NoError(t, err)
	toks["tok512.bin"], err = tokenizer.New(v)
	require.NoError(t, err)
	for name, tok := range toks {
		for _, c := range []struct{ prompt, more string }{
			{"Once upon", " a time, there was"},
			{"The dog", " was happy.\nThe end"},
			{"Hello", " world"},
		} {
			prompt, err := tok.Encode(c.prompt, tok.AddBOS())
			require.NoError(t, err)
			full, err := tok.Encode(c.prompt+c.more, tok.AddBOS())
			require.NoError(t, err)
			require.Equal(t, prompt, full[:len(prompt)], "%s: %q must tokenize as a prefix", name, c.prompt)
			dec, err := continuationDecoder(tok, prompt)
			require.NoError(t, err)
			var b strings.Builder
			for _, id := range full[len(prompt):] {
				piece, err := dec.Add(id)
				require.NoError(t, err)
				b.WriteString(piece)
			}
			b.WriteString(dec.Flush())
			require.Equal(t, c.more, b.String(), "%s after %q", name, c.prompt)
		}
	}
}

// FuzzParseTokenIDs: the --tokens and detokenize parser never panics, and
// what it accepts prints back to the same ids.
func FuzzParseTokenIDs(f *testing.F) {
	for _, s := range []string{"1 2 3", " 1\n\t2  ", "", "-5", "99999999999", "1 x", "+7 007", "\u00a01", "1e3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := parseTokenIDs("fuzz", b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		var s []string
		for _, id := range ids {
			s = append(s, strconv.Itoa(int(id)))
		}
		again, err := parseTokenIDs("fuzz", []byte(strings.Join(s, " ")))
		require.NoError(t, err)
		require.Equal(t, ids, again)
		_ = checkTokenIDs("fuzz", ids, 512)
	})
}
