package train

import (
	"fmt"

	"github.com/freqkv/freqkv/freqkv"
)

// Policy names the KV-cache policy a training forward runs with.
type Policy string

const (
	// Full is plain causal attention over the whole training sequence (the
	// LongLoRA baseline: the model sees every earlier token).
	Full Policy = "full"
	// Window is StreamingLLM in the loop: each token sees the sinks and the
	// most recent CacheSize-Sink rows, itself included, with positions by
	// index within what it sees.
	Window Policy = "window"
	// FreqKV is the grouped forward of FREQKV.md: the first N tokens
	// causally, then groups of L-m tokens over [sinks, compressed, recent]
	// plus their own group, the cache compressed between groups.
	FreqKV Policy = "freqkv"
)

// Cache is the cache policy of a training forward.
type Cache struct {
	Policy Policy
	// Config is N, S, R, g (FreqKV) or N, S (Window); unused for Full.
	Config freqkv.Config
}

// Segment is one attention call of the training forward: Tokens queries at
// sequence positions [Start, Start+Tokens), stored at cache rows
// [Rows, Rows+Tokens) behind Rows rows already there.
type Segment struct {
	Start, Tokens int
	Rows          int  // cache rows before the segment's own
	Compress      bool // the cache (Rows+Tokens = N rows) is compressed after the segment
}

// Schedule is how a sequence of T tokens runs under a cache policy.
type Schedule struct {
	Segments []Segment
	Cap      int // physical cache rows (N for FreqKV, T otherwise)
	Window   int // attention window after the sinks (Window policy), else 0
	Sink     int // pinned rows of the window (Window policy), else 0
}

// Validate checks the cache policy's parameters.
func (c Cache) Validate() error {
	switch c.Policy {
	case Full:
		return nil
	case Window:
		if c.Config.Sink < 0 || c.Config.CacheSize <= c.Config.Sink {
			return fmt.Errorf("window cache: size %d must exceed sink %d >= 0", c.Config.CacheSize, c.Config.Sink)
		}
		return nil
	case FreqKV:
		return c.Config.Validate()
	}
	return fmt.Errorf("unknown cache policy %q: use full, window or freqkv", c.Policy)
}

// Plan splits a sequence of t tokens into the segments of the policy.
func (c Cache) Plan(t int) (Schedule, error) {
	if t < 1 {
		return Schedule{}, fmt.Errorf("a training sequence needs at least one token, got %d", t)
	}
	if err := c.Validate(); err != nil {
		return Schedule{}, err
	}
	switch c.Policy {
	case Full:
		return Schedule{Segments: []Segment{{Start: 0, Tokens: t}}, Cap: t}, nil
	case Window:
		return Schedule{Segments: []Segment{{Start: 0, Tokens: t}}, Cap: t,
			Window: c.Config.CacheSize - c.Config.Sink, Sink: c.Config.Sink}, nil
	}
	cfg := c.Config
	n := cfg.CacheSize
	first := min(t, n)
	s := Schedule{Cap: n, Segments: []Segment{{Start: 0, Tokens: first}}}
	rows := first
	for start := first; start < t; {
		// the cache is full: compress it, then the next group fills it again
		s.Segments[len(s.Segments)-1].Compress = true
		rows = cfg.RowsAfterCompression()
		g := min(n-rows, t-start)
		s.Segments = append(s.Segments, Segment{Start: start, Tokens: g, Rows: rows})
		rows += g
		start += g
	}
	return s, nil
}

// Compressions is the number of compressions a schedule runs.
func (s Schedule) Compressions() int {
	n := 0
	for _, g := range s.Segments {
		if g.Compress {
			n++
		}
	}
	return n
}
