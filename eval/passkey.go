package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"unicode"
)

// The passkey prompt, after llama.cpp's examples/passkey: an instruction,
// filler, the key sentence at a chosen depth, more filler, the question.
const (
	// DefaultFiller is repeated to fill the context when no text is given.
	DefaultFiller   = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
	passkeyIntro    = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about the important information there."
	passkeySentence = " The pass key is %s. Remember it. %s is the pass key."
	passkeyQuestion = " What is the pass key? The pass key is"
)

// PasskeyConfig is a grid of prompt lengths (tokens) by key depths, with
// Trials random keys per cell.
type PasskeyConfig struct {
	Lengths []int     // total prompt tokens, BOS included
	Depths  []float64 // where the key sentence starts within the filler: 0 first, 1 last
	Trials  int       // keys per cell
	Digits  int       // digits of a key (first one non-zero)
	Seed    uint64    // keys and filler offsets; the same seed gives the same prompts
}

func (c PasskeyConfig) validate() error {
	switch {
	case len(c.Lengths) == 0 || len(c.Depths) == 0:
		return fmt.Errorf("passkey: need at least one length and one depth")
	case c.Trials < 1:
		return fmt.Errorf("passkey: %d trials per cell; need at least 1", c.Trials)
	case c.Digits < 1 || c.Digits > 18:
		return fmt.Errorf("passkey: a key of %d digits; use 1 to 18", c.Digits)
	}
	for _, d := range c.Depths {
		if !(d >= 0 && d <= 1) {
			return fmt.Errorf("passkey: depth %g is outside [0, 1]", d)
		}
	}
	for _, l := range c.Lengths {
		if l < 1 {
			return fmt.Errorf("passkey: length %d must be positive", l)
		}
	}
	return nil
}

// Filler is the token stream the haystack is cut from.
type Filler struct {
	tokens []int32
	repeat bool // a repeated sentence: every trial starts at 0
}

// NewFiller tokenizes the haystack text. With repeat, text is one or more
// sentences repeated to need tokens; otherwise it is real text whose trials
// start at random offsets (wrapping around when shorter than need).
func NewFiller(tok Tokenizer, text string, repeat bool, need int) (*Filler, error) {
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("passkey: the filler text is empty")
	}
	if !repeat {
		ids, err := tok.Encode(text, false)
		if err != nil {
			return nil, fmt.Errorf("passkey: filler: %w", err)
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("passkey: the filler text has no tokens")
		}
		return &Filler{tokens: ids}, nil
	}
	// Encode the repetition as one text so sentence boundaries tokenize as
	// they would in a document.
	for k := 1; ; k *= 2 {
		ids, err := tok.Encode(strings.Repeat(text, k), false)
		if err != nil {
			return nil, fmt.Errorf("passkey: filler: %w", err)
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("passkey: the filler text has no tokens")
		}
		if len(ids) >= need {
			return &Filler{tokens: ids, repeat: true}, nil
		}
	}
}

// take returns n filler tokens starting at off, wrapping around.
func (f *Filler) take(off, n int) []int32 {
	out := make([]int32, 0, n)
	for len(out) < n {
		i := (off + len(out)) % len(f.tokens)
		out = append(out, f.tokens[i:min(len(f.tokens), i+n-len(out))]...)
	}
	return out
}

// CheckDigits fails when the vocabulary cannot spell a key: digits that do
// not survive an encode/decode round trip cannot be matched exactly.
func CheckDigits(tok Tokenizer) error {
	const digits = "0123456789"
	ids, err := tok.Encode(" "+digits, false)
	if err != nil {
		return fmt.Errorf("passkey: the vocabulary cannot encode digits: %w", err)
	}
	s, err := tok.Decode(ids)
	if err != nil {
		return fmt.Errorf("passkey: the vocabulary cannot decode digits: %w", err)
	}
	if strings.TrimSpace(s) != digits {
		return fmt.Errorf("passkey: the vocabulary cannot spell digits (%q comes back as %q), so a key cannot be matched", digits, strings.TrimSpace(s))
	}
	return nil
}

// PasskeyPrompt is one haystack.
type PasskeyPrompt struct {
	Length int
	Depth  float64
	Key    string
	Tokens []int32
	KeyAt  int     // index of the key sentence's first token
	Decode int     // tokens to generate: enough for the key and a little more
	Answer []int32 // the expected answer's tokens (" NNNNN."), for KeyNLL
}

// passkeyParts encodes the fixed parts of a prompt for key.
func passkeyParts(tok Tokenizer, key string) (intro, sentence, question, answer []int32, err error) {
	if intro, err = tok.Encode(passkeyIntro, false); err != nil {
		return
	}
	if sentence, err = tok.Encode(fmt.Sprintf(passkeySentence, key, key), false); err != nil {
		return
	}
	if question, err = tok.Encode(passkeyQuestion, false); err != nil {
		return
	}
	answer, err = tok.Encode(" "+key+".", false)
	return
}

// BuildPasskey lays out one prompt of exactly length tokens: BOS, intro,
// filler, key sentence at depth of the filler, filler, question.
func BuildPasskey(tok Tokenizer, f *Filler, length int, depth float64, key string, fillerOffset int) (PasskeyPrompt, error) {
	intro, sentence, question, answer, err := passkeyParts(tok, key)
	if err != nil {
		return PasskeyPrompt{}, fmt.Errorf("passkey: %w", err)
	}
	bos := prefix(tok)
	fixed := len(bos) + len(intro) + len(sentence) + len(question)
	fill := length - fixed
	if fill < 0 {
		return PasskeyPrompt{}, fmt.Errorf("passkey: length %d is below the %d tokens of the instruction, key sentence and question; use a length of at least %d", length, fixed, fixed)
	}
	before := int(math.Round(depth * float64(fill)))
	hay := f.take(fillerOffset, fill)
	p := PasskeyPrompt{Length: length, Depth: depth, Key: key, Decode: len(answer) + 2, Answer: answer}
	p.Tokens = make([]int32, 0, length)
	p.Tokens = append(p.Tokens, bos...)
	p.Tokens = append(p.Tokens, intro...)
	p.Tokens = append(p.Tokens, hay[:before]...)
	p.KeyAt = len(p.Tokens)
	p.Tokens = append(p.Tokens, sentence...)
	p.Tokens = append(p.Tokens, hay[before:]...)
	p.Tokens = append(p.Tokens, question...)
	return p, nil
}

// PasskeyPrompts builds every prompt of the grid (cells in length-major
// order, Trials keys each) before anything runs, so bad input fails at once
// and every LM sees the same prompts.
func PasskeyPrompts(tok Tokenizer, f *Filler, c PasskeyConfig) ([]PasskeyPrompt, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if err := CheckDigits(tok); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x5deece66d))
	var out []PasskeyPrompt
	for _, l := range c.Lengths {
		for _, d := range c.Depths {
			for t := 0; t < c.Trials; t++ {
				key := randomKey(rng, c.Digits)
				off := 0
				if !f.repeat {
					off = rng.IntN(len(f.tokens))
				}
				p, err := BuildPasskey(tok, f, l, d, key, off)
				if err != nil {
					return nil, err
				}
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func randomKey(rng *rand.Rand, digits int) string {
	b := make([]byte, digits)
	b[0] = byte('1' + rng.IntN(9))
	for i := 1; i < digits; i++ {
		b[i] = byte('0' + rng.IntN(10))
	}
	return string(b)
}

// FirstNumber is the first run of digits in s ("" when none): the answer a
// generation gives.
func FirstNumber(s string) string {
	start := strings.IndexFunc(s, unicode.IsDigit)
	if start < 0 {
		return ""
	}
	end := strings.IndexFunc(s[start:], func(r rune) bool { return !unicode.IsDigit(r) })
	if end < 0 {
		return s[start:]
	}
	return s[start : start+end]
}

// PasskeyTrial is one prompt's outcome.
type PasskeyTrial struct {
	Length  int     `json:"length"`
	Depth   float64 `json:"depth"`
	Key     string  `json:"key"`
	Output  string  `json:"output"`
	Answer  string  `json:"answer"`
	Correct bool    `json:"correct"`
	// KeyNLL is the mean NLL of the expected answer's tokens after the
	// prompt (teacher-forced): a graded signal where accuracy is all zero.
	KeyNLL float64 `json:"key_nll"`
}

// PasskeyCell is the accuracy of one (length, depth) cell.
type PasskeyCell struct {
	Length   int     `json:"length"`
	Depth    float64 `json:"depth"`
	Trials   int     `json:"trials"`
	Correct  int     `json:"correct"`
	Accuracy float64 `json:"accuracy"`
	KeyNLL   float64 `json:"key_nll"` // mean over the cell's trials
}

// PasskeyResult is one LM's grid.
type PasskeyResult struct {
	Cells    []PasskeyCell  `json:"cells"`
	Trials   []PasskeyTrial `json:"trials"`
	Accuracy float64        `json:"accuracy"`
	KeyNLL   float64        `json:"key_nll"`
}

// RunPasskey decodes every prompt greedily and scores exact matches of the
// key's digits (the first number in the output); a second pass scores the
// expected answer's NLL.
func RunPasskey(lm LM, tok Tokenizer, prompts []PasskeyPrompt, progress Progress) (PasskeyResult, error) {
	var res PasskeyResult
	index := map[[2]float64]int{}
	correct := 0
	for i, p := range prompts {
		lm.Reset()
		out, err := lm.Greedy(p.Tokens, p.Decode)
		if err != nil {
			return res, fmt.Errorf("passkey: length %d depth %g: %w", p.Length, p.Depth, err)
		}
		text, err := tok.Decode(out)
		if err != nil {
			return res, fmt.Errorf("passkey: decode the answer: %w", err)
		}
		lm.Reset()
		seq := append(append([]int32(nil), p.Tokens...), p.Answer...)
		nll, err := lm.NLL(seq[:len(seq)-1], seq[1:])
		if err != nil {
			return res, fmt.Errorf("passkey: length %d depth %g: answer NLL: %w", p.Length, p.Depth, err)
		}
		keyNLL := nll[len(p.Tokens)-1:]
		if err := checkFinite(keyNLL, "passkey: answer"); err != nil {
			return res, err
		}
		ans := FirstNumber(text)
		tr := PasskeyTrial{Length: p.Length, Depth: p.Depth, Key: p.Key, Output: text, Answer: ans, Correct: ans == p.Key, KeyNLL: mean(keyNLL)}
		res.Trials = append(res.Trials, tr)
		k := [2]float64{float64(p.Length), p.Depth}
		ci, ok := index[k]
		if !ok {
			ci = len(res.Cells)
			index[k] = ci
			res.Cells = append(res.Cells, PasskeyCell{Length: p.Length, Depth: p.Depth})
		}
		c := &res.Cells[ci]
		c.Trials++
		c.KeyNLL += (tr.KeyNLL - c.KeyNLL) / float64(c.Trials)
		res.KeyNLL += (tr.KeyNLL - res.KeyNLL) / float64(len(res.Trials))
		if tr.Correct {
			c.Correct++
			correct++
		}
		c.Accuracy = float64(c.Correct) / float64(c.Trials)
		if progress != nil {
			progress(i + 1)
		}
	}
	if len(prompts) > 0 {
		res.Accuracy = float64(correct) / float64(len(prompts))
	}
	return res, nil
}
