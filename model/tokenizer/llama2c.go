package tokenizer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// llama2c is llama2.c's encoder: a dummy " " token first, one token per
// code point (or one byte token, id byte+3, per byte of a code point the
// vocabulary lacks), then merges by score across everything, BOS included.
type llama2c struct {
	*table
	scores []float32
	space  int32 // the " " token, llama2.c's dummy prefix
}

// llama2cFirstByte is the id of byte token <0x00> in llama2.c vocabularies
// (after <unk>, <s>, </s>), which its encoder hard-codes.
const llama2cFirstByte = 3

// llama2cMinScore: llama2.c starts its search for the best pair at this
// score, so pairs scoring no higher never merge.
const llama2cMinScore = -1e10

func newLlama2c(t *table, v *Vocab) (*llama2c, error) {
	if len(t.tokens) < llama2cFirstByte+256 {
		return nil, fmt.Errorf("%d tokens, want at least %d (3 specials and 256 bytes)", len(t.tokens), llama2cFirstByte+256)
	}
	for b := range 256 {
		if want, got := byteTokenText(byte(b)), t.tokens[llama2cFirstByte+b]; got != want {
			return nil, fmt.Errorf("token %d is %q, want byte token %q", llama2cFirstByte+b, got, want)
		}
	}
	space, ok := t.ids[" "]
	if !ok {
		return nil, errors.New(`no " " token for the dummy prefix`)
	}
	for id, text := range t.tokens {
		t.pieces[id] = llama2cPiece(text, t.types[id])
	}
	t.stripSpace = true
	return &llama2c{table: t, scores: scoresOrZero(v), space: space}, nil
}

// llama2cPiece is the decoded text of a llama2.c token, whose texts already
// hold plain spaces.
func llama2cPiece(text string, typ int32) string {
	switch typ {
	case TypeNormal, TypeUserDefined:
		return text
	case TypeByte:
		if b, ok := parseByteToken(text); ok {
			return string([]byte{b})
		}
		return text
	}
	return ""
}

func (e *llama2c) encode(text string, out []int32, start bool) ([]int32, error) {
	// llama2.c merges over everything, BOS included; a continuation merges
	// only its own tokens.
	from := 0
	if !start {
		from = len(out)
	}
	if text != "" && start {
		out = append(out, e.space)
	}
	for i := 0; i < len(text); {
		// A code point: a byte and the continuation bytes after it, four
		// bytes at most.
		j := i + 1
		for j < len(text) && text[j]&0xc0 == 0x80 && j-i < 4 {
			j++
		}
		if id, ok := e.ids[text[i:j]]; ok {
			out = append(out, id)
		} else {
			for k := i; k < j; k++ {
				out = append(out, llama2cFirstByte+int32(text[k]))
			}
		}
		i = j
	}

	// Merge over the concatenated token texts, one symbol per token.
	var buf []byte
	m := merger{rank: e.pairRank}
	for _, id := range out[from:] {
		m.syms = append(m.syms, symbol{start: len(buf), n: len(e.tokens[id])})
		buf = append(buf, e.tokens[id]...)
	}
	m.text = string(buf)
	m.run()
	merged := out[:from]
	var err error
	m.pieces(func(piece string) bool {
		id, ok := e.ids[piece]
		if !ok { // only merges into tokens happen, so this cannot be
			err = fmt.Errorf("merged text %q is no token", piece)
			return false
		}
		merged = append(merged, id)
		return true
	})
	return merged, err
}

func (e *llama2c) pairRank(text string, l, r symbol) (uint32, bool) {
	id, ok := e.ids[text[l.start:l.start+l.n+r.n]]
	if !ok || e.scores[id] <= llama2cMinScore {
		return 0, false
	}
	return scoreRank(e.scores[id]), true
}

// ReadLlama2c reads llama2.c's tokenizer.bin (as made by its tokenizer.py):
// int32 max_token_length, then per token float32 score, int32 length and the
// text bytes, all little-endian, up to the end of the file. Ids 0, 1 and 2
// are <unk>, BOS and EOS; "<0xNN>" tokens are byte tokens.
func ReadLlama2c(path string) (*Vocab, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	v, err := ParseLlama2c(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return v, nil
}

// maxLlama2cToken bounds a token's length and maxLlama2cTokens their number
// (the largest vocabularies have about 256K), against corrupt or endless
// files.
const (
	maxLlama2cToken  = 1 << 16
	maxLlama2cTokens = 1 << 20
)

// ParseLlama2c reads a tokenizer.bin from r; see ReadLlama2c.
func ParseLlama2c(r io.Reader) (*Vocab, error) {
	// max_token_length only sizes llama2.c's buffers; it is not needed here.
	var maxLen [4]byte
	if _, err := io.ReadFull(r, maxLen[:]); err != nil {
		return nil, fmt.Errorf("reading max_token_length: %w", unexpected(err))
	}
	v := &Vocab{Model: ModelLlama2c, BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true}
	for id := 0; ; id++ {
		if id == maxLlama2cTokens {
			return nil, fmt.Errorf("more than %d tokens", maxLlama2cTokens)
		}
		var head [8]byte // float32 score, int32 length
		if _, err := io.ReadFull(r, head[:]); err == io.EOF {
			break // the file ends between tokens
		} else if err != nil {
			return nil, fmt.Errorf("token %d: reading score and length: %w", id, err)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(head[:4]))
		n := int32(binary.LittleEndian.Uint32(head[4:]))
		if n < 0 || n > maxLlama2cToken {
			return nil, fmt.Errorf("token %d: invalid length %d", id, n)
		}
		text := make([]byte, n)
		if _, err := io.ReadFull(r, text); err != nil {
			return nil, fmt.Errorf("token %d: reading %d bytes: %w", id, n, unexpected(err))
		}
		v.Tokens = append(v.Tokens, string(text))
		v.Scores = append(v.Scores, score)
		v.Types = append(v.Types, llama2cType(id, string(text)))
	}
	if len(v.Tokens) < 3 {
		return nil, fmt.Errorf("%d tokens, want at least <unk>, BOS and EOS", len(v.Tokens))
	}
	return v, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func llama2cType(id int, text string) int32 {
	switch {
	case id == 0:
		return TypeUnknown
	case id == 1 || id == 2:
		return TypeControl
	}
	if _, ok := parseByteToken(text); ok {
		return TypeByte
	}
	return TypeNormal
}
