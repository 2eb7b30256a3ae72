package eval

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// RepeatConfig sets up repeat-after-gap: a segment of held-out text, a gap
// of other text, the segment again. A cache that still holds the first
// occurrence lets the model copy it, lowering the repeat's NLL.
type RepeatConfig struct {
	Segment int    // tokens of the repeated segment
	Gaps    []int  // tokens of other text between the two occurrences
	Trials  int    // segments per gap
	Seed    uint64 // where segments are taken; the same seed gives the same sequences
}

// RepeatSequence is one trial at one gap: Repeat is BOS, segment, gap,
// segment; Control is BOS, another segment, the same gap, the segment, so
// its last segment sits at the same position but was never seen.
type RepeatSequence struct {
	Gap             int
	Repeat, Control []int32
	First, Second   int // index of the first and second segment's first token
}

// RepeatSequences cuts every trial from the stream ids (no BOS) before
// anything runs. Trial t takes a region [gap | segment | control] of the
// stream at a seeded offset: the gap is the text just before the segment,
// so the repeat follows its natural context.
func RepeatSequences(tok Tokenizer, ids []int32, c RepeatConfig) ([]RepeatSequence, error) {
	if c.Segment < 2 {
		return nil, fmt.Errorf("repeat: a segment of %d tokens; need at least 2", c.Segment)
	}
	if c.Trials < 1 {
		return nil, fmt.Errorf("repeat: %d trials; need at least 1", c.Trials)
	}
	if len(c.Gaps) == 0 {
		return nil, fmt.Errorf("repeat: need at least one gap")
	}
	maxGap := 0
	for _, g := range c.Gaps {
		if g < 0 {
			return nil, fmt.Errorf("repeat: gap %d is negative", g)
		}
		maxGap = max(maxGap, g)
	}
	region := maxGap + 2*c.Segment
	if len(ids) < region {
		return nil, fmt.Errorf("repeat: the text has %d tokens; a gap of %d and two segments of %d need %d", len(ids), maxGap, c.Segment, region)
	}
	bos := prefix(tok)
	rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x2545f4914f6cdd1d))
	var out []RepeatSequence
	for t := 0; t < c.Trials; t++ {
		start := rng.IntN(len(ids) - region + 1)
		seg := ids[start+maxGap : start+maxGap+c.Segment]
		ctrl := ids[start+maxGap+c.Segment : start+region]
		for _, g := range c.Gaps {
			gap := ids[start+maxGap-g : start+maxGap]
			s := RepeatSequence{Gap: g, First: len(bos), Second: len(bos) + c.Segment + g}
			s.Repeat = slices.Concat(bos, seg, gap, seg)
			s.Control = slices.Concat(bos, ctrl, gap, seg)
			out = append(out, s)
		}
	}
	return out, nil
}

// RepeatPoint is the mean NLL at one gap, over the segment's tokens after
// its first (the first token follows unrelated text in every case).
type RepeatPoint struct {
	Gap     int     `json:"gap"`
	Trials  int     `json:"trials"`
	First   float64 `json:"first_nll"`   // the segment's first occurrence
	Repeat  float64 `json:"repeat_nll"`  // the same segment after the gap
	Control float64 `json:"control_nll"` // the segment at the repeat's position, never seen before
	Gain    float64 `json:"gain"`        // Control - Repeat: what remembering the segment is worth
}

// RunRepeat evaluates every sequence (two forward passes each) and averages
// per gap, in the order of the first trial's gaps.
func RunRepeat(lm LM, seqs []RepeatSequence, segment int, progress Progress) ([]RepeatPoint, error) {
	type acc struct{ first, repeat, control []float64 }
	byGap := map[int]*acc{}
	var order []int
	for i, s := range seqs {
		nll := func(seq []int32) ([]float64, error) {
			lm.Reset()
			x, err := lm.NLL(seq[:len(seq)-1], seq[1:])
			if err != nil {
				return nil, fmt.Errorf("repeat: gap %d: %w", s.Gap, err)
			}
			return x, checkFinite(x, fmt.Sprintf("repeat: gap %d", s.Gap))
		}
		rep, err := nll(s.Repeat)
		if err != nil {
			return nil, err
		}
		ctl, err := nll(s.Control)
		if err != nil {
			return nil, err
		}
		// nll[j] predicts seq[j+1]: a segment starting at index a has its
		// tokens after the first predicted by nll[a : a+segment-1].
		a := byGap[s.Gap]
		if a == nil {
			a = &acc{}
			byGap[s.Gap] = a
			order = append(order, s.Gap)
		}
		a.first = append(a.first, mean(rep[s.First:s.First+segment-1]))
		a.repeat = append(a.repeat, mean(rep[s.Second:s.Second+segment-1]))
		a.control = append(a.control, mean(ctl[s.Second:s.Second+segment-1]))
		if progress != nil {
			progress(i + 1)
		}
	}
	out := make([]RepeatPoint, 0, len(order))
	for _, g := range order {
		a := byGap[g]
		p := RepeatPoint{Gap: g, Trials: len(a.first), First: mean(a.first), Repeat: mean(a.repeat), Control: mean(a.control)}
		p.Gain = p.Control - p.Repeat
		out = append(out, p)
	}
	return out, nil
}
