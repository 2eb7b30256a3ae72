// Package tokenizer turns text into token ids and back for LLaMA-family
// models, giving exactly the ids of llama.cpp for GGUF vocabularies and of
// llama2.c for its tokenizer.bin.
//
// Three models are supported: SentencePiece ("llama": merges by token score,
// byte fallback), byte-level BPE ("gpt2": merges by rank after the
// pre-tokenizer named by tokenizer.ggml.pre, see internal/pretok) and
// llama2.c's encoder ("llama2c"). Text is never parsed for control tokens;
// callers add BOS (Encode's addBOS) and EOS by id. Decoding does not apply
// llama.cpp's optional clean-up of spaces before punctuation, so that decoded
// text is exactly the text that was encoded.
package tokenizer

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Tokenizer encodes and decodes text for one vocabulary. Implementations are
// immutable and safe for concurrent use.
type Tokenizer interface {
	// Encode returns the ids of text, after BOS when addBOS is set (pass
	// AddBOS() for the model's convention). Text is taken literally: control
	// tokens such as "<s>" written in it are not recognised, while
	// user-defined tokens are, as llama.cpp does without parse_special. EOS
	// is never appended.
	Encode(text string, addBOS bool) ([]int32, error)
	// EncodeSpecial is Encode with control tokens written in the text
	// (e.g. "<|im_start|>", "</s>") recognised as their single ids, as
	// llama.cpp does with parse_special: for prompts rendered by a chat
	// template, never for user text. The text between them is encoded as
	// Encode encodes a text alone.
	EncodeSpecial(text string, addBOS bool) ([]int32, error)
	// Decode returns the text of ids. Control and unknown tokens decode to
	// nothing, byte tokens to their raw byte, and with SentencePiece
	// vocabularies the space prefix of the first token (or of a token after
	// BOS) is dropped. Decode(Encode(s)) is s for valid UTF-8 s whose
	// characters the vocabulary covers and that holds no user-defined token
	// (after one, SentencePiece adds a space prefix again, as llama.cpp
	// does).
	Decode(ids []int32) (string, error)
	// Piece is the text of one token as Decode renders it, except that
	// control and unknown tokens show their own text (e.g. "<s>"). A byte
	// token's piece is a single, possibly invalid UTF-8, byte. Out of range
	// ids give "".
	Piece(id int32) string
	VocabSize() int
	BOS() int32 // -1 if the vocabulary has none
	EOS() int32 // -1 if the vocabulary has none
	// AddBOS reports whether the model expects prompts to start with BOS.
	AddBOS() bool
	// NewDecoder starts a streaming decode; see Decoder.
	NewDecoder() *Decoder
}

// encoder is the model-specific half of a Tokenizer: it appends the ids of
// text to out, which holds BOS when one was requested. start is false for a
// piece that continues the text encoded into out before (see Encode): no
// space prefix, and merges only within the piece.
type encoder interface {
	encode(text string, out []int32, start bool) ([]int32, error)
}

type tokenizer struct {
	*table
	enc encoder
	// spansAfterNewline marks the bytes some token has right after a
	// newline: a long text is encoded in pieces cut after a newline between
	// non-blank characters, the next not marked here (see cut), which gives
	// the same ids as in one go.
	spansAfterNewline [256]bool
	// wordCuts: the newline must also follow a non-blank byte (byte-level
	// BPE, whose pre-tokenizers group runs of blanks).
	wordCuts bool
}

// pieceBytes is about the size of the pieces a long text is encoded in, so
// that the encoders' working memory (tens of bytes per byte of text) stays
// bounded whatever the text's length.
var pieceBytes = 1 << 16

// New checks v and builds its tokenizer. v is not retained.
func New(v *Vocab) (Tokenizer, error) {
	if v == nil {
		return nil, errors.New("tokenizer: nil vocabulary")
	}
	t, err := newTable(v)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s vocabulary: %w", v.Model, err)
	}
	tok := &tokenizer{table: t}
	switch v.Model {
	case ModelSPM:
		tok.enc, err = newSPM(t, v)
	case ModelBPE:
		tok.enc, err = newBPE(t, v)
	case ModelLlama2c:
		tok.enc, err = newLlama2c(t, v)
	default:
		err = fmt.Errorf("unsupported model %q (want %q, %q or %q)", v.Model, ModelSPM, ModelBPE, ModelLlama2c)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s vocabulary: %w", v.Model, err)
	}
	tok.wordCuts = v.Model == ModelBPE
	tok.markNewlineSpans(tok.wordCuts)
	return tok, nil
}

// markNewlineSpans sets spansAfterNewline from the tokens. Byte-level BPE
// merges only within pre-tokenizer words, which never span a newline
// between non-blank characters, so only its user-defined tokens (matched in
// the raw text) count.
func (t *tokenizer) markNewlineSpans(wordsOnly bool) {
	mark := func(s string) {
		for i := 0; i+1 < len(s); i++ {
			if s[i] == '\n' {
				t.spansAfterNewline[s[i+1]] = true
			}
		}
	}
	for id, text := range t.tokens {
		if wordsOnly && t.types[id] != TypeUserDefined {
			continue
		}
		mark(text)
		mark(t.pieces[id])
	}
}

// blank reports ASCII white space, and bytes of non-ASCII characters (which
// may be white space too).
func blank(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f' || b >= 0x80
}

// cut returns where the first piece of a long text ends: after a newline
// at or after pieceBytes that precedes a non-blank byte no token has after a
// newline (and, with wordCuts, follows a non-blank byte), or len(text) when
// there is none. No pre-tokenizer word and no token spans such a cut, so the
// pieces encode to the same ids as the whole.
func (t *tokenizer) cut(text string) int {
	for i := max(pieceBytes, 1); i+1 < len(text); i++ {
		if text[i] == '\n' && !blank(text[i+1]) && !t.spansAfterNewline[text[i+1]] && !(t.wordCuts && blank(text[i-1])) {
			return i + 1
		}
	}
	return len(text)
}

func (t *tokenizer) Encode(text string, addBOS bool) ([]int32, error) {
	var out []int32
	if addBOS {
		if t.bos < 0 {
			return nil, errors.New("tokenizer: encode: BOS requested, but the vocabulary has no BOS token")
		}
		out = append(out, t.bos)
	}
	for start := true; start || text != ""; start = false {
		piece := text
		if len(text) > pieceBytes {
			piece = text[:t.cut(text)]
		}
		var err error
		if out, err = t.enc.encode(piece, out, start); err != nil {
			return nil, fmt.Errorf("tokenizer: encode: %w", err)
		}
		text = text[len(piece):]
	}
	return out, nil
}

func (t *tokenizer) EncodeSpecial(text string, addBOS bool) ([]int32, error) {
	frags := t.partitionBy(text, t.control)
	if len(frags) == 1 && frags[0].id < 0 {
		return t.Encode(text, addBOS)
	}
	var out []int32
	if addBOS {
		if t.bos < 0 {
			return nil, errors.New("tokenizer: encode: BOS requested, but the vocabulary has no BOS token")
		}
		out = append(out, t.bos)
	}
	for _, f := range frags {
		if f.id >= 0 {
			out = append(out, f.id)
			continue
		}
		ids, err := t.Encode(f.text, false)
		if err != nil {
			return nil, err
		}
		out = append(out, ids...)
	}
	return out, nil
}

func (t *tokenizer) Decode(ids []int32) (string, error) {
	var b strings.Builder
	prev := int32(-1)
	for i, id := range ids {
		p, err := t.decodePiece(id, i == 0 || prev == t.bos)
		if err != nil {
			return "", fmt.Errorf("tokenizer: decode: position %d: %w", i, err)
		}
		b.WriteString(p)
		prev = id
	}
	return b.String(), nil
}

func (t *tokenizer) NewDecoder() *Decoder { return &Decoder{t: t.table, first: true} }

func (t *tokenizer) VocabSize() int { return len(t.tokens) }
func (t *tokenizer) BOS() int32     { return t.bos }
func (t *tokenizer) EOS() int32     { return t.eos }
func (t *tokenizer) AddBOS() bool   { return t.addBOS }

// table holds what every model shares: token lookup, types and the decoded
// text of each token.
type table struct {
	tokens []string
	types  []int32
	ids    map[string]int32
	pieces []string // what Decode writes for each token

	bos, eos, unk int32
	addBOS        bool
	// stripSpace drops the leading space that SentencePiece's dummy prefix
	// put on the first word.
	stripSpace bool
	// userDefined are the ids split out of text before encoding, longest
	// text first (llama.cpp's tokenizer_st_partition order).
	userDefined []int32
	// control are the control tokens, longest first: what EncodeSpecial
	// splits out.
	control []int32
}

func newTable(v *Vocab) (*table, error) {
	n := len(v.Tokens)
	if n == 0 {
		return nil, errors.New("no tokens")
	}
	if v.Scores != nil && len(v.Scores) != n {
		return nil, fmt.Errorf("%d scores for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("%d token types for %d tokens", len(v.Types), n)
	}
	for _, sp := range []struct {
		name string
		id   int32
	}{{"BOS", v.BOS}, {"EOS", v.EOS}, {"UNK", v.UNK}, {"PAD", v.PAD}} {
		if sp.id < -1 || sp.id >= int32(n) {
			return nil, fmt.Errorf("%s id %d outside [-1, %d)", sp.name, sp.id, n)
		}
	}
	if v.AddBOS && v.BOS < 0 {
		return nil, errors.New("AddBOS is set but there is no BOS token")
	}

	t := &table{
		tokens: slices.Clone(v.Tokens),
		types:  make([]int32, n),
		ids:    make(map[string]int32, n),
		pieces: make([]string, n),
		bos:    v.BOS,
		eos:    v.EOS,
		unk:    v.UNK,
		addBOS: v.AddBOS,
	}
	for id, text := range t.tokens {
		typ := TypeNormal
		if v.Types != nil {
			typ = v.Types[id]
		}
		if looksLikeControl(text) {
			typ = TypeControl // as llama.cpp does for end-of-turn and FIM markers
		}
		t.types[id] = typ
		if text == "" {
			continue // cannot be matched; llama.cpp renames such tokens
		}
		if prev, dup := t.ids[text]; dup {
			return nil, fmt.Errorf("token %q has ids %d and %d", text, prev, id)
		}
		t.ids[text] = int32(id)
		if typ == TypeUserDefined {
			t.userDefined = append(t.userDefined, int32(id))
		}
		if typ == TypeControl {
			t.control = append(t.control, int32(id))
		}
	}
	longestFirst := func(a, b int32) int { return cmp.Compare(len(t.tokens[b]), len(t.tokens[a])) }
	slices.SortStableFunc(t.userDefined, longestFirst)
	slices.SortStableFunc(t.control, longestFirst)
	return t, nil
}

// controlLooking lists texts that llama.cpp treats as control tokens
// whatever their stored type (llama_vocab::impl::load).
var controlLooking = map[string]bool{
	"<|eot_id|>": true, "<|im_end|>": true, "<|end|>": true, "<end_of_turn>": true,
	"<|endoftext|>": true, "<|end_of_text|>": true, "<EOT>": true, "_<EOT>": true,
	"<｜end▁of▁sentence｜>": true, "<|eom_id|>": true,
	"<|fim_prefix|>": true, "<fim-prefix>": true, "<fim_prefix>": true, "<｜fim▁begin｜>": true,
	"<|fim_suffix|>": true, "<fim-suffix>": true, "<fim_suffix>": true, "<｜fim▁hole｜>": true,
	"<|fim_middle|>": true, "<fim-middle>": true, "<fim_middle>": true, "<｜fim▁end｜>": true,
	"<|fim_pad|>": true, "<fim-pad>": true, "<fim_pad>": true,
	"<|fim_repo|>": true, "<|repo_name|>": true, "<fim-repo>": true, "<reponame>": true,
	"<|file_sep|>": true,
}

func looksLikeControl(text string) bool { return controlLooking[text] }

// decodePiece returns the text id contributes to decoded output; atStart
// marks a token that begins the text or follows BOS.
func (t *table) decodePiece(id int32, atStart bool) (string, error) {
	if id < 0 || int(id) >= len(t.pieces) {
		return "", fmt.Errorf("token id %d outside [0, %d)", id, len(t.pieces))
	}
	p := t.pieces[id]
	if atStart && t.stripSpace {
		p = strings.TrimPrefix(p, " ")
	}
	return p, nil
}

func (t *table) Piece(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	switch t.types[id] {
	case TypeNormal, TypeByte, TypeUserDefined:
		return t.pieces[id]
	}
	return t.tokens[id]
}

// fragment is a stretch of the input text, or a user-defined token that was
// split out of it (id >= 0).
type fragment struct {
	text string
	id   int32
}

// partition splits user-defined tokens out of text, trying the longest
// first, as llama.cpp's tokenizer_st_partition does without parse_special.
func (t *table) partition(text string) []fragment { return t.partitionBy(text, t.userDefined) }

// partitionBy splits the tokens ids (longest first) out of text.
func (t *table) partitionBy(text string, ids []int32) []fragment {
	if text == "" {
		return nil
	}
	frags := []fragment{{text: text, id: -1}}
	if len(ids) == 0 {
		return frags
	}
	// Fragments are pieces of text, so a token whose first two bytes never
	// occur in text cannot occur in them: skip it without a search.
	var pairs [1 << 16 / 64]uint64
	for i := 0; i+1 < len(text); i++ {
		p := uint16(text[i])<<8 | uint16(text[i+1])
		pairs[p/64] |= 1 << (p % 64)
	}
	for _, id := range ids {
		special := t.tokens[id]
		if len(special) >= 2 {
			p := uint16(special[0])<<8 | uint16(special[1])
			if pairs[p/64]&(1<<(p%64)) == 0 {
				continue
			}
		}
		frags = splitOut(frags, special, id)
	}
	return frags
}

// splitOut splits every occurrence of the token text special, id, out of
// the text fragments.
func splitOut(frags []fragment, special string, id int32) []fragment {
	var out []fragment // stays nil while nothing changes
	for i, f := range frags {
		if f.id >= 0 || !strings.Contains(f.text, special) {
			if out != nil {
				out = append(out, f)
			}
			continue
		}
		if out == nil {
			out = append(make([]fragment, 0, len(frags)+2), frags[:i]...)
		}
		rest := f.text
		for {
			k := strings.Index(rest, special)
			if k < 0 {
				break
			}
			if k > 0 {
				out = append(out, fragment{text: rest[:k], id: -1})
			}
			out = append(out, fragment{id: id})
			rest = rest[k+len(special):]
		}
		if rest != "" {
			out = append(out, fragment{text: rest, id: -1})
		}
	}
	if out == nil {
		return frags
	}
	return out
}

// parseByteToken reads the byte of a "<0xNN>" token.
func parseByteToken(text string) (byte, bool) {
	if len(text) != 6 || !strings.HasPrefix(text, "<0x") || text[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexDigit(text[3])
	lo, ok2 := hexDigit(text[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// byteTokenText is the SentencePiece text of the token for byte b.
func byteTokenText(b byte) string {
	const hex = "0123456789ABCDEF"
	return string([]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'})
}
