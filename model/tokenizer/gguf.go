package tokenizer

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/model/gguf"
)

// GGUF metadata keys of the tokenizer.
const (
	keyModel          = "tokenizer.ggml.model"
	keyPre            = "tokenizer.ggml.pre"
	keyTokens         = "tokenizer.ggml.tokens"
	keyScores         = "tokenizer.ggml.scores"
	keyTypes          = "tokenizer.ggml.token_type"
	keyMerges         = "tokenizer.ggml.merges"
	keyBOS            = "tokenizer.ggml.bos_token_id"
	keyEOS            = "tokenizer.ggml.eos_token_id"
	keyUNK            = "tokenizer.ggml.unknown_token_id"
	keyPAD            = "tokenizer.ggml.padding_token_id"
	keyAddBOS         = "tokenizer.ggml.add_bos_token"
	keyAddEOS         = "tokenizer.ggml.add_eos_token"
	keyAddSpacePrefix = "tokenizer.ggml.add_space_prefix"
)

// FromGGUF reads the tokenizer.ggml.* metadata of f. Absent settings take
// llama.cpp's defaults: SentencePiece vocabularies have <unk>, BOS and EOS
// at 0, 1 and 2, add BOS and a space prefix; BPE ones add BOS only for
// Llama 3 style pre-tokenizers. A special token id of 0xFFFFFFFF (or -1)
// means none; any other id outside the vocabulary is an error.
func FromGGUF(f *gguf.File) (*Vocab, error) {
	v, err := readGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: reading GGUF vocabulary: %w", err)
	}
	return v, nil
}

func readGGUF(f *gguf.File) (*Vocab, error) {
	model, err := f.String(keyModel)
	if err != nil {
		return nil, err
	}
	v := &Vocab{BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	switch model {
	case ModelSPM:
		v.Model, v.BOS, v.EOS, v.UNK = ModelSPM, 1, 2, 0
		v.AddBOS, v.AddSpacePrefix = true, true
	case ModelBPE:
		v.Model = ModelBPE
	default:
		return nil, fmt.Errorf("%s %q is not supported (want %q or %q)", keyModel, model, ModelSPM, ModelBPE)
	}

	if v.Tokens, err = f.Strings(keyTokens); err != nil {
		return nil, err
	}
	if v.Pre, err = optional(f, keyPre, f.String, ""); err != nil {
		return nil, err
	}
	if v.Model == ModelBPE {
		v.AddBOS = ignoreMergesPre[v.Pre] // llama.cpp pairs the two for Llama 3
		if v.Merges, err = f.Strings(keyMerges); err != nil {
			return nil, err
		}
	}
	if v.Scores, err = readScores(f); err != nil {
		return nil, err
	}
	if v.Types, err = readTypes(f); err != nil {
		return nil, err
	}

	n := int64(len(v.Tokens))
	for _, sp := range []struct {
		key string
		id  *int32
	}{{keyBOS, &v.BOS}, {keyEOS, &v.EOS}, {keyUNK, &v.UNK}, {keyPAD, &v.PAD}} {
		if int64(*sp.id) >= n {
			*sp.id = -1 // a default the vocabulary is too small for
		}
		if _, ok := f.Value(sp.key); !ok {
			continue
		}
		id, err := specialID(f, sp.key)
		if err != nil {
			return nil, err
		}
		if id >= n {
			return nil, fmt.Errorf("%s %d is outside the vocabulary of %d tokens", sp.key, id, n)
		}
		*sp.id = int32(id)
	}

	for _, flag := range []struct {
		key string
		val *bool
	}{{keyAddBOS, &v.AddBOS}, {keyAddEOS, &v.AddEOS}, {keyAddSpacePrefix, &v.AddSpacePrefix}} {
		if *flag.val, err = optional(f, flag.key, f.Bool, *flag.val); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// specialID reads a special token id; "none" (0xFFFFFFFF or -1) is -1.
func specialID(f *gguf.File, key string) (int64, error) {
	switch v, _ := f.Value(key); v {
	case int8(-1), int16(-1), int32(-1), int64(-1):
		return -1, nil
	}
	id, err := f.Uint(key)
	if err != nil {
		return 0, err
	}
	if id == math.MaxUint32 {
		return -1, nil
	}
	return int64(min(id, math.MaxInt64)), nil
}

// optional reads key with get, or returns def when the key is absent.
func optional[T any](f *gguf.File, key string, get func(string) (T, error), def T) (T, error) {
	if _, ok := f.Value(key); !ok {
		return def, nil
	}
	return get(key)
}

// readScores accepts float32 scores and, like llama.cpp, integer ones.
func readScores(f *gguf.File) ([]float32, error) {
	if _, ok := f.Value(keyScores); !ok {
		return nil, nil
	}
	scores, err := f.Float32s(keyScores)
	if err == nil {
		return scores, nil
	}
	ints, intErr := f.Ints(keyScores)
	if intErr != nil {
		return nil, err
	}
	scores = make([]float32, len(ints))
	for i, s := range ints {
		scores[i] = float32(s)
	}
	return scores, nil
}

func readTypes(f *gguf.File) ([]int32, error) {
	if _, ok := f.Value(keyTypes); !ok {
		return nil, nil
	}
	ints, err := f.Ints(keyTypes)
	if err != nil {
		return nil, err
	}
	types := make([]int32, len(ints))
	for i, t := range ints {
		if t >= int64(TypeUndefined) && t <= int64(TypeByte) {
			types[i] = int32(t)
		} // else TypeUndefined, as llama.cpp maps unknown types
	}
	return types, nil
}
