// Package eval measures whether a language model with a given KV cache
// remembers what it has read: the passkey (needle-in-a-haystack) test,
// repeat-after-gap NLL, and mean NLL per position bucket. It drives any LM
// one sequence at a time and knows nothing about GPUs or cache policies, so
// every policy, model and adapter is measured by the same code.
package eval

import (
	"fmt"
	"math"
)

// LM is one sequence's model context: the engine's llama.Context behind a
// small adapter, or a fake in tests.
type LM interface {
	// Reset empties the context for a new sequence.
	Reset()
	// NLL feeds tokens and returns, for each position i, the negative
	// log-likelihood of targets[i] given tokens[:i+1] and what came before.
	NLL(tokens, targets []int32) ([]float64, error)
	// Greedy feeds prompt and returns up to n greedily decoded tokens
	// (fewer when the model ends the sequence).
	Greedy(prompt []int32, n int) ([]int32, error)
}

// Tokenizer is what the evaluations need of a vocabulary
// (model/tokenizer.Tokenizer satisfies it).
type Tokenizer interface {
	Encode(text string, addBOS bool) ([]int32, error)
	Decode(ids []int32) (string, error)
	BOS() int32
	AddBOS() bool
}

// Progress is called after each unit of work (a sequence); may be nil.
type Progress func(done int)

func mean(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// checkFinite rejects NaN or infinite NLLs: a broken kernel must not pass
// for a bad model.
func checkFinite(nll []float64, what string) error {
	for i, x := range nll {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%s: NLL at position %d is %v", what, i, x)
		}
	}
	return nil
}

// prefix returns the BOS token as a one-token slice when the model expects
// it, else nothing.
func prefix(tok Tokenizer) []int32 {
	if tok.AddBOS() && tok.BOS() >= 0 {
		return []int32{tok.BOS()}
	}
	return nil
}
