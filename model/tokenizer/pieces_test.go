package tokenizer

import (
	"os"
	"testing"

	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/stretchr/testify/require"
)

// TestLongTextInPieces: a long text encoded in pieces (bounded memory)
// gives exactly the ids of the whole text in one go, for every vocabulary.
func TestLongTextInPieces(t *testing.T) {
	text, err := os.ReadFile(shareddata.Path(t, "text/tinystories-valid-a.txt"))
	require.NoError(t, err)
	text = text[:100_000]
	lines, err := os.ReadFile(shareddata.Path(t, "text/war-and-peace.txt"))
	require.NoError(t, err)
	text = append(text, lines[:50_000]...)
	// Cuts right after a newline, blanks around it, non-ASCII after it.
	text = append(text, "end.\n \nx\n\ty\r\nz\n\u00e9t\u00e9\nA\nB\n<s>\nC\n</s>\n"...)
	vocabs := map[string]*Vocab{}
	for _, name := range []string{"llama-spm", "gpt-2", "deepseek-llm", "phi-3", "falcon", "starcoder"} {
		f, err := gguf.Open(shareddata.Path(t, "vocab/ggml-vocab-"+name+".gguf"))
		require.NoError(t, err)
		v, err := FromGGUF(f)
		require.NoError(t, err)
		vocabs[name] = v
		f.Close()
	}
	v, err := ReadLlama2c(shareddata.Path(t, "models/tok512.bin"))
	require.NoError(t, err)
	vocabs["llama2c"] = v
	defer func(n int) { pieceBytes = n }(pieceBytes)
	for name, v := range vocabs {
		tok, err := New(v)
		require.NoError(t, err, name)
		pieceBytes = 1 << 30
		whole, err := tok.Encode(string(text), tok.AddBOS())
		require.NoError(t, err, name)
		for _, n := range []int{1, 100, 4000} {
			pieceBytes = n
			if v.Model != ModelBPE { // BPE only cuts between non-blank lines, which this text lacks
				require.Less(t, tok.(*tokenizer).cut(string(text)), len(text)/2, "%s: no cut in pieces of %d", name, n)
			}
			got, err := tok.Encode(string(text), tok.AddBOS())
			require.NoError(t, err, name)
			require.Equal(t, whole, got, "%s in pieces of %d bytes", name, n)
		}
		t.Logf("%s: %d tokens", name, len(whole))
	}
}
