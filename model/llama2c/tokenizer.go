package llama2c

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// Tokenizer is a llama2.c tokenizer.bin: a vocabulary with merge scores.
type Tokenizer struct {
	MaxTokenLength int
	Tokens         []string
	Scores         []float32
}

// ReadTokenizer reads the tokenizer.bin at path, which holds vocabSize
// tokens (the file does not record the count; the checkpoint does).
func ReadTokenizer(path string, vocabSize int) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("llama2c: %w", err)
	}
	tok, err := ParseTokenizer(data, vocabSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tok, nil
}

// ParseTokenizer decodes a tokenizer.bin holding vocabSize tokens: an int32
// max_token_length, then per token a float32 score, an int32 byte length and
// the bytes. The data must end after the last token.
func ParseTokenizer(data []byte, vocabSize int) (*Tokenizer, error) {
	const perToken = 8 // score and length, before the bytes
	if len(data) < 4 {
		return nil, fmt.Errorf("llama2c: tokenizer of %d bytes has no header", len(data))
	}
	if vocabSize <= 0 || vocabSize > (len(data)-4)/perToken {
		return nil, fmt.Errorf("llama2c: %d tokens cannot fit in a %d-byte tokenizer", vocabSize, len(data))
	}
	t := &Tokenizer{
		MaxTokenLength: int(int32(binary.LittleEndian.Uint32(data))),
		Tokens:         make([]string, vocabSize),
		Scores:         make([]float32, vocabSize),
	}
	off := 4
	for i := range vocabSize {
		if len(data)-off < perToken {
			return nil, fmt.Errorf("llama2c: token %d: unexpected end of tokenizer at byte %d", i, off)
		}
		t.Scores[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += perToken
		if n < 0 || n > len(data)-off {
			return nil, fmt.Errorf("llama2c: token %d: length %d at byte %d, %d bytes left", i, n, off-4, len(data)-off)
		}
		t.Tokens[i] = string(data[off : off+n])
		off += n
	}
	if off != len(data) {
		return nil, fmt.Errorf("llama2c: %d bytes after token %d", len(data)-off, vocabSize-1)
	}
	return t, nil
}
