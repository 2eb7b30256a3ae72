package tokenizer

// Tokenizer models, the values of Vocab.Model.
const (
	ModelSPM     = "llama"   // SentencePiece BPE by score (GGUF tokenizer.ggml.model "llama")
	ModelBPE     = "gpt2"    // byte-level BPE by merge rank (GGUF tokenizer.ggml.model "gpt2")
	ModelLlama2c = "llama2c" // llama2.c's tokenizer.bin and its encoder
)

// Token types, the values of Vocab.Types (llama.cpp's llama_token_type, as
// stored in GGUF tokenizer.ggml.token_type).
const (
	TypeUndefined   int32 = 0
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3 // BOS, EOS, ...: never produced from text, decoded as nothing
	TypeUserDefined int32 = 4 // split out of the text before the model runs, decoded verbatim
	TypeUnused      int32 = 5
	TypeByte        int32 = 6 // <0xNN>: one raw byte
)

// Vocab is a tokenizer's vocabulary and settings, as read from GGUF
// (FromGGUF) or from llama2.c's tokenizer.bin (ReadLlama2c). New checks it
// and builds a Tokenizer from it.
type Vocab struct {
	Model  string    // ModelSPM, ModelBPE or ModelLlama2c
	Pre    string    // pre-tokenizer of ModelBPE (tokenizer.ggml.pre); "" is llama.cpp's default
	Tokens []string  // token texts; SPM marks spaces with U+2581, BPE stores bytes mapped to runes
	Scores []float32 // merge priorities of ModelSPM and ModelLlama2c; nil means all 0
	Types  []int32   // Type* per token; nil means all TypeNormal
	Merges []string  // ModelBPE merges "left right", highest priority first

	BOS, EOS, UNK, PAD int32 // special token ids, -1 if none

	AddBOS         bool // the model expects BOS before a prompt
	AddEOS         bool // the model expects EOS after a prompt
	AddSpacePrefix bool // SPM: prepend a space to the text, as SentencePiece's dummy prefix
}
