package tokenizer

import (
	"fmt"
	"slices"
	"strings"
)

// spaceMarker is U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's mark for a space.
const spaceMarker = "\u2581"

// spm is the SentencePiece encoder of llama.cpp (llm_tokenizer_spm): merges
// by token score, then byte fallback for what no token covers.
type spm struct {
	*table
	scores         []float32
	addSpacePrefix bool
	byteIDs        [256]int32 // -1 where the vocabulary has no token for the byte
}

func newSPM(t *table, v *Vocab) (*spm, error) {
	e := &spm{table: t, scores: scoresOrZero(v), addSpacePrefix: v.AddSpacePrefix}
	for b := range 256 {
		// llama.cpp's byte_to_token: "<0xNN>", else the byte itself.
		e.byteIDs[b] = -1
		if id, ok := t.ids[byteTokenText(byte(b))]; ok {
			e.byteIDs[b] = id
		} else if id, ok := t.ids[string([]byte{byte(b)})]; ok {
			e.byteIDs[b] = id
		}
	}
	for id, text := range t.tokens {
		t.pieces[id] = spmPiece(text, t.types[id])
	}
	t.stripSpace = v.AddSpacePrefix
	return e, nil
}

// scoresOrZero copies v's scores, or makes zero ones.
func scoresOrZero(v *Vocab) []float32 {
	if v.Scores != nil {
		return slices.Clone(v.Scores)
	}
	return make([]float32, len(v.Tokens))
}

// spmPiece is the decoded text of a SentencePiece token.
func spmPiece(text string, typ int32) string {
	switch typ {
	case TypeNormal:
		return strings.ReplaceAll(text, spaceMarker, " ")
	case TypeUserDefined:
		return text
	case TypeByte:
		if b, ok := parseByteToken(text); ok {
			return string([]byte{b})
		}
		return text
	}
	return "" // control, unknown, unused
}

func (e *spm) encode(text string, out []int32, start bool) ([]int32, error) {
	afterSpecial := start // the text start counts as following a special token
	for _, f := range e.partition(text) {
		if f.id >= 0 {
			out = append(out, f.id)
			afterSpecial = true
			continue
		}
		s := f.text
		if e.addSpacePrefix && afterSpecial {
			s = " " + s
		}
		var err error
		if out, err = e.encodeFragment(strings.ReplaceAll(s, " ", spaceMarker), out); err != nil {
			return nil, err
		}
		afterSpecial = false
	}
	return out, nil
}

func (e *spm) encodeFragment(text string, out []int32) ([]int32, error) {
	m := merger{rank: e.pairRank}
	m.reset(text)
	m.run()
	var err error
	m.pieces(func(piece string) bool {
		if id, ok := e.ids[piece]; ok {
			out = append(out, id)
			return true
		}
		// Merged symbols are always tokens, so only a single character
		// the vocabulary lacks gets here: spell it in bytes. (llama.cpp
		// first consults its record of merges, which cannot hold a single
		// character.)
		for k := 0; k < len(piece); k++ {
			id := e.byteIDs[piece[k]]
			if id < 0 {
				id = e.unk
			}
			if id < 0 {
				err = fmt.Errorf("no token for byte 0x%02X and no unknown token", piece[k])
				return false
			}
			out = append(out, id)
		}
		return true
	})
	return out, err
}

// pairRank ranks a pair by the score of the token it forms, if any.
func (e *spm) pairRank(text string, l, r symbol) (uint32, bool) {
	id, ok := e.ids[text[l.start:l.start+l.n+r.n]]
	if !ok {
		return 0, false
	}
	return scoreRank(e.scores[id]), true
}
