package llama

import (
	"fmt"
	"time"
)

// GenStats summarises a generation.
type GenStats struct {
	PromptTokens    int
	Generated       int
	PrefillDuration time.Duration
	DecodeDuration  time.Duration
}

// PrefillTPS is prompt tokens per second.
func (s GenStats) PrefillTPS() float64 { return rate(s.PromptTokens, s.PrefillDuration) }

// DecodeTPS is generated tokens per second (after the first).
func (s GenStats) DecodeTPS() float64 { return rate(s.Generated-1, s.DecodeDuration) }

func rate(n int, d time.Duration) float64 {
	if n <= 0 || d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Generate feeds the prompt (BOS alone when empty), then samples up to n
// tokens, calling emit with each; emit returning false stops early, as does
// the end-of-sequence token when stopAtEOS.
func (c *Context) Generate(prompt []int32, n int, s *Sampler, stopAtEOS bool, emit func(tok int32) bool) (GenStats, error) {
	if err := s.Validate(); err != nil {
		return GenStats{}, fmt.Errorf("sampler: %w", err)
	}
	if len(prompt) == 0 {
		prompt = []int32{c.m.Tok.BOS()}
	}
	st := GenStats{PromptTokens: len(prompt)}
	history := append([]int32(nil), prompt...)
	start := time.Now()
	next, err := c.Next(prompt, s, history)
	if err != nil {
		return st, fmt.Errorf("token 1 (after the %d-token prompt): %w", len(prompt), err)
	}
	st.PrefillDuration = time.Since(start)
	start = time.Now()
	eos := c.m.Tok.EOS()
	for st.Generated < n {
		st.Generated++
		history = append(history, next)
		if (stopAtEOS && next == eos) || !emit(next) {
			break
		}
		if st.Generated == n {
			break
		}
		if next, err = c.Next([]int32{next}, s, history); err != nil {
			return st, fmt.Errorf("token %d: %w", st.Generated+1, err)
		}
	}
	st.DecodeDuration = time.Since(start)
	return st, nil
}
