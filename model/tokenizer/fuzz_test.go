package tokenizer

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/freqkv/freqkv/model/gguf"
)

// llama2cBytes builds a tokenizer.bin.
func llama2cBytes(tokens []string) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, int32(8))
	for i, t := range tokens {
		binary.Write(&b, binary.LittleEndian, math.Float32bits(float32(-i)))
		binary.Write(&b, binary.LittleEndian, int32(len(t)))
		b.WriteString(t)
	}
	return b.Bytes()
}

// useTokenizer builds a tokenizer from v, if it is valid, and runs text
// through it: nothing may panic, and what encodes must decode.
func useTokenizer(t *testing.T, v *Vocab) {
	tok, err := New(v)
	if err != nil {
		return
	}
	for _, text := range []string{"", "hello world", "a\nb\n\nc é 日本 \x00\xff"} {
		ids, err := tok.Encode(text, tok.AddBOS())
		if err != nil {
			continue
		}
		for _, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("Encode(%q) gave id %d outside [0, %d)", text, id, tok.VocabSize())
			}
		}
		if _, err := tok.Decode(ids); err != nil {
			t.Fatalf("Decode(Encode(%q)): %v", text, err)
		}
	}
}

// FuzzReadLlama2c: no tokenizer.bin makes the reader or the tokenizer built
// from it panic or allocate more than the file warrants.
func FuzzReadLlama2c(f *testing.F) {
	bytesTokens := []string{"<unk>", "\n<s>\n", "\n</s>\n"}
	for b := range 256 {
		bytesTokens = append(bytesTokens, byteTokenText(byte(b)))
	}
	f.Add(llama2cBytes(append(bytesTokens, " ", "a", "b", " a", "ab")))
	f.Add(llama2cBytes([]string{"<unk>", "<s>", "</s>"}))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseLlama2c(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(v.Tokens) > len(data) {
			t.Fatalf("%d tokens from %d bytes", len(v.Tokens), len(data))
		}
		useTokenizer(t, v)
	})
}

// FuzzGGUFVocab: no GGUF tokenizer metadata makes FromGGUF or New panic,
// and special ids outside the vocabulary are never accepted.
func FuzzGGUFVocab(f *testing.F) {
	for _, kv := range [][]gguf.KV{
		{{Key: "tokenizer.ggml.model", Value: "llama"}, {Key: "tokenizer.ggml.tokens", Value: []string{"<unk>", "<s>", "</s>", "▁a", "b"}},
			{Key: "tokenizer.ggml.bos_token_id", Value: uint32(1)}},
		{{Key: "tokenizer.ggml.model", Value: "gpt2"}, {Key: "tokenizer.ggml.tokens", Value: []string{"a", "b", "ab", "Ġ"}},
			{Key: "tokenizer.ggml.merges", Value: []string{"a b"}}, {Key: "tokenizer.ggml.eos_token_id", Value: uint32(7)}},
	} {
		var b bytes.Buffer
		if err := gguf.Write(&b, kv, nil); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := gguf.Parse(data)
		if err != nil {
			return
		}
		v, err := FromGGUF(g)
		if err != nil {
			return
		}
		for _, id := range []int32{v.BOS, v.EOS, v.UNK, v.PAD} {
			if id < -1 || int(id) >= len(v.Tokens) {
				t.Fatalf("special id %d accepted for %d tokens", id, len(v.Tokens))
			}
		}
		useTokenizer(t, v)
	})
}
