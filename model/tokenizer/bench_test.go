package tokenizer

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/internal/shareddata"
)

// BenchmarkEncode measures encoding speed (bytes of text per second) on
// 64 KiB of English prose for each kind of tokenizer.
func BenchmarkEncode(b *testing.B) {
	raw, err := os.ReadFile(shareddata.Path(b, "text/war-and-peace.txt"))
	require.NoError(b, err)
	text := strings.ToValidUTF8(string(raw[:min(len(raw), 64<<10)]), "")

	for _, bc := range []struct {
		name string
		load func(testing.TB) Tokenizer
	}{
		{"llama-spm", func(tb testing.TB) Tokenizer {
			return loadGGUF(tb, shareddata.Path(tb, "vocab/ggml-vocab-llama-spm.gguf"))
		}},
		{"gpt-2", func(tb testing.TB) Tokenizer {
			return loadGGUF(tb, shareddata.Path(tb, "vocab/ggml-vocab-gpt-2.gguf"))
		}},
		{"deepseek-llm", func(tb testing.TB) Tokenizer {
			return loadGGUF(tb, shareddata.Path(tb, "vocab/ggml-vocab-deepseek-llm.gguf"))
		}},
		{"llama2c-tok512", loadTok512},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tok := bc.load(b)
			b.SetBytes(int64(len(text)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := tok.Encode(text, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
