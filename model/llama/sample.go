package llama

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Sampler picks the next token from logits. The zero value (Temperature 0,
// no penalty) is greedy, which the GPU does alone (one token read back);
// everything else reads back one row of logits, since on measurement a
// vocabulary-sized read costs far less than a decode step (see README).
type Sampler struct {
	Temperature   float64 // 0: greedy
	TopK          int     // 0: off
	TopP          float64 // 1 or 0: off
	MinP          float64 // 0: off
	RepeatPenalty float64 // 1 or 0: off; llama.cpp's rule: divide positive logits, multiply negative
	RepeatWindow  int     // how many recent tokens the penalty looks at (default 64)
	Seed          uint64

	rng *rand.Rand
}

// Validate checks the ranges.
func (s *Sampler) Validate() error {
	switch {
	case s.Temperature < 0 || math.IsNaN(s.Temperature):
		return fmt.Errorf("temperature %v must be >= 0", s.Temperature)
	case s.TopK < 0:
		return fmt.Errorf("top-k %d must be >= 0", s.TopK)
	case s.TopP < 0 || s.TopP > 1:
		return fmt.Errorf("top-p %v must be in [0, 1]", s.TopP)
	case s.MinP < 0 || s.MinP > 1:
		return fmt.Errorf("min-p %v must be in [0, 1]", s.MinP)
	case s.RepeatPenalty < 0:
		return fmt.Errorf("repeat penalty %v must be >= 0", s.RepeatPenalty)
	}
	return nil
}

// Greedy reports whether the choice is a plain argmax.
func (s *Sampler) Greedy() bool {
	return s.Temperature == 0 && (s.RepeatPenalty == 0 || s.RepeatPenalty == 1)
}

// Sample picks a token from logits given the tokens so far.
func (s *Sampler) Sample(logits []float32, history []int32) int32 {
	if s.rng == nil {
		s.rng = rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	}
	l := make([]float64, len(logits))
	for i, x := range logits {
		l[i] = float64(x)
	}
	if s.RepeatPenalty != 0 && s.RepeatPenalty != 1 {
		w := s.RepeatWindow
		if w <= 0 {
			w = 64
		}
		seen := map[int32]bool{}
		for _, t := range history[max(0, len(history)-w):] {
			if seen[t] || int(t) >= len(l) || t < 0 {
				continue
			}
			seen[t] = true
			if l[t] > 0 {
				l[t] /= s.RepeatPenalty
			} else {
				l[t] *= s.RepeatPenalty
			}
		}
	}
	if s.Temperature == 0 {
		best := 0
		for i := range l {
			if l[i] > l[best] {
				best = i
			}
		}
		return int32(best)
	}
	// Candidates sorted by logit, then top-k, softmax at temperature,
	// min-p and top-p, as llama.cpp's sampler chain orders them.
	idx := make([]int, len(l))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return l[idx[a]] > l[idx[b]] || (l[idx[a]] == l[idx[b]] && idx[a] < idx[b]) })
	if s.TopK > 0 && s.TopK < len(idx) {
		idx = idx[:s.TopK]
	}
	probs := make([]float64, len(idx))
	mx, sum := l[idx[0]], 0.0
	for i, id := range idx {
		probs[i] = math.Exp((l[id] - mx) / s.Temperature)
		sum += probs[i]
	}
	for i := range probs {
		probs[i] /= sum
	}
	keep := len(idx)
	if s.MinP > 0 {
		for keep > 1 && probs[keep-1] < s.MinP*probs[0] {
			keep--
		}
	}
	if s.TopP > 0 && s.TopP < 1 {
		cum := 0.0
		for i := 0; i < keep; i++ {
			cum += probs[i]
			if cum >= s.TopP {
				keep = i + 1
				break
			}
		}
	}
	total := 0.0
	for _, p := range probs[:keep] {
		total += p
	}
	r := s.rng.Float64() * total
	for i, p := range probs[:keep] {
		r -= p
		if r < 0 {
			return int32(idx[i])
		}
	}
	return int32(idx[keep-1])
}
