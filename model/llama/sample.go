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
	// Written so that NaN fails every range.
	switch {
	case !(s.Temperature >= 0 && s.Temperature <= math.MaxFloat64):
		return fmt.Errorf("temperature %v must be finite and >= 0", s.Temperature)
	case s.TopK < 0:
		return fmt.Errorf("top-k %d must be >= 0", s.TopK)
	case !(s.TopP >= 0 && s.TopP <= 1):
		return fmt.Errorf("top-p %v must be in [0, 1]", s.TopP)
	case !(s.MinP >= 0 && s.MinP <= 1):
		return fmt.Errorf("min-p %v must be in [0, 1]", s.MinP)
	case !(s.RepeatPenalty >= 0 && s.RepeatPenalty <= math.MaxFloat64):
		return fmt.Errorf("repeat penalty %v must be finite and >= 0", s.RepeatPenalty)
	case s.RepeatWindow < 0:
		return fmt.Errorf("repeat window %d must be >= 0", s.RepeatWindow)
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
	ids, probs := s.distribution(logits, history)
	total := 0.0
	for _, p := range probs {
		total += p
	}
	r := s.rng.Float64() * total
	for i, p := range probs {
		r -= p
		if r < 0 {
			return ids[i]
		}
	}
	return ids[len(ids)-1]
}

// penalised applies the repetition penalty to a copy of the logits.
func (s *Sampler) penalised(logits []float32, history []int32) []float64 {
	l := make([]float64, len(logits))
	for i, x := range logits {
		l[i] = float64(x)
	}
	if s.RepeatPenalty == 0 || s.RepeatPenalty == 1 {
		return l
	}
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
	return l
}

// distribution returns the tokens that may be drawn, best first, with
// their (unnormalised) probabilities, in llama.cpp's sampler order:
// repetition penalty, top-k, softmax at temperature over the top-k set,
// min-p relative to the best token, then top-p. It sorts only the tokens
// that survive top-k and min-p, so a 128K vocabulary costs O(V log k).
func (s *Sampler) distribution(logits []float32, history []int32) ([]int32, []float64) {
	l := s.penalised(logits, history)
	best := 0
	for i := range l {
		if l[i] > l[best] {
			best = i
		}
	}
	if s.Temperature == 0 {
		return []int32{int32(best)}, []float64{1}
	}
	set := topK(l, s.TopK)
	mx := l[best]
	sum := 0.0
	for _, id := range set {
		sum += math.Exp((l[id] - mx) / s.Temperature)
	}
	cutoff := math.Inf(-1)
	if s.MinP > 0 {
		// p_i >= minP * p_max  <=>  l_i >= max + T * ln(minP)
		cutoff = mx + s.Temperature*math.Log(s.MinP)
	}
	cand := set[:0:0]
	for _, id := range set {
		if l[id] >= cutoff {
			cand = append(cand, id)
		}
	}
	sort.Slice(cand, func(a, b int) bool {
		return l[cand[a]] > l[cand[b]] || (l[cand[a]] == l[cand[b]] && cand[a] < cand[b])
	})
	ids := make([]int32, 0, len(cand))
	probs := make([]float64, 0, len(cand))
	cum := 0.0
	for _, id := range cand {
		p := math.Exp((l[id]-mx)/s.Temperature) / sum
		ids, probs = append(ids, int32(id)), append(probs, p)
		cum += p
		if s.TopP > 0 && s.TopP < 1 && cum >= s.TopP {
			break
		}
	}
	return ids, probs
}

// topK returns the indices of the k largest values (all of them if k is 0
// or covers the slice), in no particular order, through a size-k min-heap.
func topK(l []float64, k int) []int {
	if k <= 0 || k >= len(l) {
		all := make([]int, len(l))
		for i := range all {
			all[i] = i
		}
		return all
	}
	h := make([]int, 0, k) // min-heap by (value, then larger index first)
	less := func(a, b int) bool { return l[a] < l[b] || (l[a] == l[b] && a > b) }
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && less(h[c+1], h[c]) {
				c++
			}
			if !less(h[c], h[i]) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := range l {
		if len(h) < k {
			h = append(h, i)
			for j := len(h) - 1; j > 0; {
				p := (j - 1) / 2
				if !less(h[j], h[p]) {
					break
				}
				h[j], h[p] = h[p], h[j]
				j = p
			}
			continue
		}
		if less(h[0], i) {
			h[0] = i
			down(0)
		}
	}
	return h
}
