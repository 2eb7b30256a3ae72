package pretok

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTrickyInputs: Llama 3's ("llama-bpe") and Qwen2's pre-tokenizers split
// digits (1-3 or one at a time), contractions, other scripts, combining
// marks, emoji and whitespace runs as their upstream expressions do
// (testdata/tricky.json, from testdata/gen_tricky.py with Python's regex).
func TestTrickyInputs(t *testing.T) {
	b, err := os.ReadFile("testdata/tricky.json")
	require.NoError(t, err)
	var doc map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &doc))
	var inputs []string
	require.NoError(t, json.Unmarshal(doc["inputs"], &inputs))
	for _, pre := range []string{"llama-bpe", "qwen2"} {
		s, err := New(pre)
		require.NoError(t, err)
		var want [][]string
		require.NoError(t, json.Unmarshal(doc[s.Name()], &want))
		require.Len(t, want, len(inputs))
		for i, in := range inputs {
			require.Equal(t, in, strings.Join(want[i], ""), "the expressions cover %q", in)
			assert.Equal(t, want[i], s.Split(in), "%s: %q", pre, in)
		}
	}
}
