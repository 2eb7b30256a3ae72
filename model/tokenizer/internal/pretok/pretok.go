// Package pretok splits text into the pre-tokens (words) that byte-level BPE
// then merges, reproducing the pre-tokenizers llama.cpp selects by the GGUF
// key tokenizer.ggml.pre.
//
// Upstream these pre-tokenizers are regular expressions with look-ahead and
// Unicode classes, which Go's regexp cannot express. Each expression is
// hand-coded here as a matcher (see expressions.go), and a pre-tokenizer is a
// list of them applied in turn: as in llama.cpp, every expression splits each
// piece left by the one before into its matches and the gaps between them.
package pretok

import (
	"fmt"
	"sort"
)

// Splitter is one pre-tokenizer. It is immutable and safe for concurrent use.
type Splitter struct {
	name  string
	steps []matcher
}

// pipelines maps each supported pre-tokenizer to its expressions.
var pipelines = map[string][]matcher{
	// llama.cpp's fallback for BPE vocabularies without a known pre-tokenizer.
	"default": {
		runOf(punctOr("$+<=>^~|")), // [\p{P}\$\+<=>\^~\|]+
		matchGPT2,
		runOf(isNumber), // \p{N}+
		digitTriple,
	},
	"gpt2":   {matchGPT2},
	"llama3": {llama3Matcher(3)},
	"qwen2":  {llama3Matcher(1)},
	"falcon": {
		runOf(punctOr("$+<=>^~|`")), // [\p{P}\$\+<=>\^~\|`]+
		matchGPT2,
		digitTriple,
	},
	"starcoder": {
		oneOf(isNumber), // \p{N}
		matchGPT2,
	},
	"deepseek-llm": {
		oneOf(isNewline),
		prefixedRun(isSpace, inWide(deepseekLetters)), // \s?[A-Za-zµÀ-Ö...]+
		prefixedRun(isSpace, inWide(deepseekPunct)),   // \s?[!-/:-~！-／...]+
		spacesToEnd,
		runOf(inWide(cjk)),
		runOf(isNumber),
	},
	"deepseek-coder": {
		oneOf(isNewline),
		prefixedRun(isSpace, isLetter), // \s?\p{L}+
		prefixedRun(isSpace, isPunct),  // \s?\p{P}+
		runOf(inWide(cjk)),
		oneOf(isNumber),
	},
}

// aliases maps tokenizer.ggml.pre values onto the pipelines, following
// llama.cpp's llama_vocab::impl::load.
var aliases = map[string]string{
	"":                 "default",
	"default":          "default",
	"gpt-2":            "gpt2",
	"gpt2":             "gpt2",
	"mpt":              "gpt2",
	"olmo":             "gpt2",
	"jais":             "gpt2",
	"phi-2":            "gpt2",
	"jina-es":          "gpt2",
	"jina-de":          "gpt2",
	"jina-v1-en":       "gpt2",
	"jina-v2-es":       "gpt2",
	"jina-v2-de":       "gpt2",
	"jina-v2-code":     "gpt2",
	"roberta-bpe":      "gpt2",
	"gigachat":         "gpt2",
	"exaone4":          "gpt2",
	"llama3":           "llama3",
	"llama-v3":         "llama3",
	"llama-bpe":        "llama3",
	"falcon3":          "llama3",
	"pixtral":          "llama3",
	"dbrx":             "llama3",
	"smaug-bpe":        "llama3",
	"chatglm-bpe":      "llama3",
	"glm4":             "llama3",
	"qwen2":            "qwen2",
	"deepseek-r1-qwen": "qwen2",
	"stablelm2":        "qwen2",
	"megrez":           "qwen2",
	"hunyuan":          "qwen2",
	"falcon":           "falcon",
	"starcoder":        "starcoder",
	"refact":           "starcoder",
	"command-r":        "starcoder",
	"smollm":           "starcoder",
	"codeshell":        "starcoder",
	"exaone":           "starcoder",
	"minerva-7b":       "starcoder",
	"deepseek-llm":     "deepseek-llm",
	"deepseek-coder":   "deepseek-coder",
}

// New returns the pre-tokenizer named by a tokenizer.ggml.pre value; the
// empty name selects llama.cpp's default.
func New(pre string) (*Splitter, error) {
	name, ok := aliases[pre]
	if !ok {
		return nil, fmt.Errorf("pretok: unsupported pre-tokenizer %q (supported: %v)", pre, Names())
	}
	return &Splitter{name: name, steps: pipelines[name]}, nil
}

// Names lists the accepted tokenizer.ggml.pre values.
func Names() []string {
	names := make([]string, 0, len(aliases))
	for n := range aliases {
		if n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Name is the pipeline the splitter runs, e.g. "llama3" for "llama-bpe".
func (s *Splitter) Name() string { return s.name }

type span struct{ start, end int }

// Split returns the pre-tokens of text in order. Invalid UTF-8 is read as
// llama.cpp reads it (see decodeLenient), so the words concatenate to text
// only when text is valid UTF-8.
func (s *Splitter) Split(text string) []string {
	cps := decodeLenient(text)
	if len(cps) == 0 {
		return nil
	}
	spans := []span{{0, len(cps)}}
	var next []span
	for _, m := range s.steps {
		next = splitSpans(m, cps, spans, next[:0])
		spans, next = next, spans
	}

	buf := make([]byte, 0, len(text))
	ends := make([]int, len(spans))
	for i, sp := range spans {
		for _, r := range cps[sp.start:sp.end] {
			buf = appendCodepoint(buf, r)
		}
		ends[i] = len(buf)
	}
	all := string(buf)
	words := make([]string, len(spans))
	start := 0
	for i, end := range ends {
		words[i] = all[start:end]
		start = end
	}
	return words
}

// splitSpans applies one expression to every span the way llama.cpp walks a
// std::regex_iterator: each match becomes a span, and so does each stretch
// of text between matches.
func splitSpans(m matcher, text []rune, in, out []span) []span {
	for _, sp := range in {
		gap := sp.start
		for pos := sp.start; pos < sp.end; {
			n := m(text, pos, sp.end)
			if n == 0 {
				pos++
				continue
			}
			if pos > gap {
				out = append(out, span{gap, pos})
			}
			out = append(out, span{pos, pos + n})
			pos += n
			gap = pos
		}
		if gap < sp.end {
			out = append(out, span{gap, sp.end})
		}
	}
	return out
}
