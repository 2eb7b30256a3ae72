package tokenizer

import (
	"fmt"
	"unicode/utf8"
)

// Decoder turns a stream of token ids into text as they arrive. It holds
// back the leading bytes of a UTF-8 character until its last byte comes, so
// a character spread over several tokens (byte tokens, byte-level BPE
// pieces) is never emitted broken; bytes that cannot start or continue a
// character are passed on as they are.
//
// A Decoder applies the same rules as Tokenizer.Decode, so the outputs of
// Add followed by Flush concatenate to Decode of the same ids. In
// particular, with SentencePiece vocabularies the first token's space prefix
// is dropped: to continue text decoded before (say, after a prompt), feed
// the Decoder the earlier tokens first and discard what it returns for them.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	t       *table
	pending []byte // an incomplete character, at most utf8.UTFMax-1 bytes
	first   bool   // no token seen yet
	prev    int32
}

// Add decodes one more token and returns the text completed by it, possibly
// empty.
func (d *Decoder) Add(id int32) (string, error) {
	piece, err := d.t.decodePiece(id, d.first || d.prev == d.t.bos)
	if err != nil {
		return "", fmt.Errorf("tokenizer: decoder: %w", err)
	}
	d.first, d.prev = false, id
	d.pending = append(d.pending, piece...)
	cut := completePrefix(d.pending)
	out := string(d.pending[:cut])
	d.pending = append(d.pending[:0], d.pending[cut:]...)
	return out, nil
}

// Flush returns the bytes still held back (an unfinished character, which
// stays invalid UTF-8) and clears them.
func (d *Decoder) Flush() string {
	out := string(d.pending)
	d.pending = d.pending[:0]
	return out
}

// completePrefix is the length of p without a trailing incomplete, but so
// far valid, UTF-8 character.
func completePrefix(p []byte) int {
	for i := len(p) - 1; i >= 0 && i > len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if utf8.FullRune(p[i:]) {
				return len(p)
			}
			return i
		}
	}
	return len(p)
}
