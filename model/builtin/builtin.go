// Package builtin embeds the default model, Karpathy's stories260K with
// its tokenizer (MIT, see LICENSE), so commands run a real model with no
// model file.
package builtin

import (
	"bytes"
	_ "embed"
	"fmt"

	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama2c"
)

//go:embed embedded/stories260K.bin
var checkpoint []byte

//go:embed embedded/tok512.bin
var tokenizer []byte

// Name is how commands name the embedded model.
const Name = "stories260K (embedded)"

// Open converts the embedded llama2.c checkpoint to GGUF in memory.
func Open() (*gguf.File, error) {
	ck, err := llama2c.ParseCheckpoint(checkpoint)
	if err != nil {
		return nil, fmt.Errorf("embedded model: %w", err)
	}
	tok, err := llama2c.ParseTokenizer(tokenizer, ck.VocabSize)
	if err != nil {
		return nil, fmt.Errorf("embedded tokenizer: %w", err)
	}
	var buf bytes.Buffer
	if err := llama2c.Convert(&buf, ck, tok); err != nil {
		return nil, fmt.Errorf("embedded model: %w", err)
	}
	return gguf.Parse(buf.Bytes())
}
