package tokenizer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/internal/testdata"
	"github.com/freqkv/freqkv/model/gguf"
)

// vectorCase is one of llama.cpp's tokenizer test vectors.
type vectorCase struct {
	text string
	ids  []int32
}

// readVectors parses a .inp/.out pair the way llama.cpp's test-tokenizer-0
// does: inputs are separated by "\n__ggml_vocab_test__\n" (so each input
// loses the newline before the separator), outputs are one line of
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
		cases[i].text = inputs[i]
		cases[i].ids = []int32{}
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

// TestLlamaCppVectors checks every shared vocabulary with test vectors
// against them, id for id: no BOS, no special-token parsing.
func TestLlamaCppVectors(t *testing.T) {
	dir := testdata.Path(t, "vocab")
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
			}
			t.Logf("%d inputs", len(cases))
		})
	}
}

func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}
