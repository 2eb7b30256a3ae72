package llama2c

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
//
// It reads no more than vocabSize tokens of the longest length a token may
// has, so an endless or oversized file is an error, not a large
// allocation.
func ReadTokenizer(path string, vocabSize int) (*Tokenizer, error) {
	data, err := readTokenizerFile(path, vocabSize)
	var tok *Tokenizer
	if err == nil {
		tok, err = ParseTokenizer(data, vocabSize)
	}
	if err != nil {
		return nil, fmt.Errorf("llama2c: tokenizer %s: %w", path, unprefixed{err})
	}
	return tok, nil
}

// maxTokenBytes bounds one token's length (llama2.c vocabularies' longest
// tokens are tens of bytes).
const maxTokenBytes = 1 << 16

func readTokenizerFile(path string, vocabSize int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if info.Size() == 0 {
		return nil, errors.New("empty file")
	}
	if limit := 4 + int64(vocabSize)*(8+maxTokenBytes); info.Size() > limit {
		return nil, fmt.Errorf("%d bytes is more than %d tokens of at most %d bytes can take", info.Size(), vocabSize, maxTokenBytes)
	}
	data := make([]byte, info.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	return data, nil
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
		if n < 0 || n > maxTokenBytes || n > len(data)-off {
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
