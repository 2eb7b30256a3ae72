package llama2c

import (
	"testing"
)

// FuzzParseCheckpoint checks that no header or length makes the reader
// panic or accept a file whose weights it then cannot slice.
func FuzzParseCheckpoint(f *testing.F) {
	small := Config{Dim: 4, HiddenDim: 6, Layers: 1, Heads: 2, KVHeads: 1, VocabSize: 3, SeqLen: 2}
	for _, shared := range []bool{true, false} {
		small.SharedClassifier = shared
		data, _ := buildCheckpoint(small, 1)
		f.Add(data)
		f.Add(data[:30])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ck, err := ParseCheckpoint(data)
		if err != nil {
			return
		}
		want, err := ck.floats()
		if err != nil || 28+4*want != uint64(len(data)) {
			t.Fatalf("accepted %d bytes for %+v", len(data), ck.Config)
		}
	})
}

// FuzzParseTokenizer checks that no length field makes the reader panic.
func FuzzParseTokenizer(f *testing.F) {
	f.Add(tokenizerBytes(3, []string{"<unk>", "ab", " c"}, []float32{0, -1, -2}), 3)
	f.Add(tokenizerBytes(1, []string{"a"}, []float32{0})[:9], 1)
	f.Fuzz(func(t *testing.T, data []byte, vocab int) {
		tok, err := ParseTokenizer(data, vocab)
		if err != nil {
			return
		}
		if len(tok.Tokens) != vocab || len(tok.Scores) != vocab {
			t.Fatalf("asked for %d tokens, got %d", vocab, len(tok.Tokens))
		}
	})
}
