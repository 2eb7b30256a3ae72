package tokenizer

import (
	"fmt"
	"strings"

	"github.com/freqkv/freqkv/model/tokenizer/internal/pretok"
)

// bpe is llama.cpp's byte-level BPE encoder (llm_tokenizer_bpe): the text is
// split into words by the pre-tokenizer, each word is written in GPT-2's
// byte-level alphabet and merged by rank.
type bpe struct {
	*table
	split *pretok.Splitter
	ranks map[mergePair]int32
	// ignoreMerges: a word that is a token as a whole is taken as it is
	// (Llama 3 and kin).
	ignoreMerges bool
}

type mergePair struct{ left, right string }

// ignoreMergesPre are the pre-tokenizers for which llama.cpp sets
// ignore_merges.
var ignoreMergesPre = map[string]bool{
	"llama3": true, "llama-v3": true, "llama-bpe": true, "falcon3": true, "pixtral": true,
}

func newBPE(t *table, v *Vocab) (*bpe, error) {
	split, err := pretok.New(v.Pre)
	if err != nil {
		return nil, err
	}
	if len(v.Merges) == 0 {
		return nil, fmt.Errorf("no merges")
	}
	e := &bpe{
		table:        t,
		split:        split,
		ranks:        make(map[mergePair]int32, len(v.Merges)),
		ignoreMerges: ignoreMergesPre[v.Pre],
	}
	for rank, m := range v.Merges {
		// Split at the first space after the first byte, as llama.cpp does;
		// a merge without one can never apply.
		k := strings.IndexByte(m[min(1, len(m)):], ' ') + 1
		if k <= 0 {
			continue
		}
		p := mergePair{m[:k], m[k+1:]}
		if _, dup := e.ranks[p]; !dup {
			e.ranks[p] = int32(rank)
		}
	}
	for id, text := range t.tokens {
		t.pieces[id] = bpePiece(text, t.types[id])
	}
	return e, nil
}

// bpePiece is the decoded text of a byte-level token.
func bpePiece(text string, typ int32) string {
	switch typ {
	case TypeNormal:
		return fromByteLevel(text)
	case TypeUserDefined:
		return text
	case TypeByte:
		if b, ok := parseByteToken(text); ok {
			return string([]byte{b})
		}
		return text
	}
	return ""
}

func (e *bpe) encode(text string, out []int32, _ bool) ([]int32, error) {
	var buf []byte
	m := merger{rank: e.pairRank}
	for _, f := range e.partition(text) {
		if f.id >= 0 {
			out = append(out, f.id)
			continue
		}
		for _, word := range e.split.Split(f.text) {
			buf = appendByteLevel(buf[:0], word)
			out = e.encodeWord(&m, string(buf), out)
		}
	}
	return out, nil
}

func (e *bpe) encodeWord(m *merger, word string, out []int32) []int32 {
	if e.ignoreMerges {
		if id, ok := e.ids[word]; ok {
			return append(out, id)
		}
	}
	m.reset(word)
	m.run()
	m.pieces(func(piece string) bool {
		if id, ok := e.ids[piece]; ok {
			out = append(out, id)
			return true
		}
		// No token: fall back to single-byte tokens, silently dropping
		// bytes that have none, as llama.cpp does.
		for k := 0; k < len(piece); k++ {
			if id, ok := e.ids[piece[k:k+1]]; ok {
				out = append(out, id)
			}
		}
		return true
	})
	return out
}

// pairRank ranks a pair by its position in the merge list.
func (e *bpe) pairRank(text string, l, r symbol) (uint32, bool) {
	rank, ok := e.ranks[mergePair{text[l.start : l.start+l.n], text[r.start : r.start+r.n]}]
	return uint32(rank), ok
}
