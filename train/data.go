package train

import (
	"fmt"
	"math/rand/v2"
)

// Task is what a training sequence holds.
type Task string

const (
	// Text: consecutive tokens of the training text.
	Text Task = "text"
	// Repeat: a passage, a gap of other text longer than the cache, and the
	// passage again, so only a cache that remembers predicts the repeat.
	Repeat Task = "repeat"
)

// Data draws training sequences of T+1 tokens (inputs and their next-token
// targets) from a token stream in a seeded order: two Data with one seed
// and stream give the same sequences.
type Data struct {
	stream []int32
	t      int
	task   Task
	gap    int // Repeat: tokens between the passage and its repeat
	rng    *rand.Rand
	order  []int // Text: window starts of the current epoch
	next   int
}

// NewData prepares sequences of t tokens. cacheRows is the cache size N a
// repeat's gap must exceed.
func NewData(stream []int32, t int, task Task, cacheRows int, seed uint64) (*Data, error) {
	if t < 1 {
		return nil, fmt.Errorf("sequence length %d must be positive", t)
	}
	if len(stream) < t+1 {
		return nil, fmt.Errorf("the text has %d tokens, fewer than the %d of one training sequence; use a longer text or a shorter sequence", len(stream), t+1)
	}
	d := &Data{stream: stream, t: t, task: task, rng: rand.New(rand.NewPCG(seed, 0x7261696e))}
	switch task {
	case Text:
	case Repeat:
		// thirds: passage, gap, passage again (the gap at least N+1)
		d.gap = max(cacheRows+1, (t+1)/3)
		if p := (t + 1 - d.gap) / 2; p < 1 {
			return nil, fmt.Errorf("a repeat sequence of %d tokens has no room for a passage and a gap of %d tokens (more than the cache's %d rows); use a longer sequence", t+1, d.gap, cacheRows)
		}
	default:
		return nil, fmt.Errorf("unknown task %q: use text or repeat", task)
	}
	return d, nil
}

// Windows is the number of distinct non-overlapping sequences in the stream.
func (d *Data) Windows() int { return (len(d.stream) - 1) / d.t }

// Passage is the length of a Repeat sequence's passage and the start of
// its gap; the repeat starts at Passage()+Gap(). Zero for Text.
func (d *Data) Passage() int {
	if d.task != Repeat {
		return 0
	}
	return (d.t + 1 - d.gap) / 2
}

// Gap is the length of a Repeat sequence's gap.
func (d *Data) Gap() int { return d.gap }

// Next returns the next sequence of T+1 tokens (a fresh slice).
func (d *Data) Next() []int32 {
	out := make([]int32, d.t+1)
	if d.task == Repeat {
		d.repeat(out)
		return out
	}
	if d.next == len(d.order) {
		// a new epoch: every non-overlapping window once, shuffled
		d.order = d.rng.Perm(d.Windows())
		d.next = 0
	}
	s := d.order[d.next] * d.t
	d.next++
	copy(out, d.stream[s:s+d.t+1])
	return out
}

// repeat fills out with passage, gap, passage again, then filler text: the
// passage and the gap come from independent random places in the stream.
func (d *Data) repeat(out []int32) {
	p := d.Passage()
	span := func(n int) []int32 {
		s := d.rng.IntN(len(d.stream) - n + 1)
		return d.stream[s : s+n]
	}
	copy(out, span(p))
	copy(out[p:], span(d.gap))
	copy(out[p+d.gap:], out[:p])
	if rest := len(out) - 2*p - d.gap; rest > 0 {
		copy(out[2*p+d.gap:], span(rest))
	}
}
