package eval

import "fmt"

// CurveConfig is the per-position perplexity protocol: windows of Window
// tokens every Stride tokens of a stream (at most MaxWindows of them, 0: all),
// NLL averaged per bucket of Bucket positions within the window.
type CurveConfig struct {
	Window, Stride, Bucket, MaxWindows int
}

// CurveWindows returns the start of each window over a stream of n tokens
// (a window needs Window+1 tokens: inputs and targets).
func CurveWindows(n int, c CurveConfig) ([]int, error) {
	switch {
	case c.Window < 1 || c.Bucket < 1:
		return nil, fmt.Errorf("ppl-curve: window %d and bucket %d must be positive", c.Window, c.Bucket)
	case c.Stride < 1:
		return nil, fmt.Errorf("ppl-curve: stride %d must be positive", c.Stride)
	case c.MaxWindows < 0:
		return nil, fmt.Errorf("ppl-curve: at most %d windows must not be negative", c.MaxWindows)
	}
	var out []int
	for s := 0; s+c.Window+1 <= n; s += c.Stride {
		if c.MaxWindows > 0 && len(out) == c.MaxWindows {
			break
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ppl-curve: the text has %d tokens, fewer than one window of %d + 1", n, c.Window)
	}
	return out, nil
}

// Bucket is the mean NLL of positions [Start, End) of every window.
type Bucket struct {
	Start   int     `json:"start"`
	End     int     `json:"end"`
	Tokens  int     `json:"tokens"`
	MeanNLL float64 `json:"mean_nll"`
}

// PositionCurve runs every window and averages NLL per position bucket
// (position = index of the predicting token within its window).
func PositionCurve(lm LM, ids []int32, starts []int, c CurveConfig, progress Progress) ([]Bucket, error) {
	nb := (c.Window + c.Bucket - 1) / c.Bucket
	sums := make([]float64, nb)
	counts := make([]int, nb)
	for i, s := range starts {
		if s < 0 || s+c.Window+1 > len(ids) {
			return nil, fmt.Errorf("ppl-curve: window at %d runs past the %d tokens", s, len(ids))
		}
		lm.Reset()
		nll, err := lm.NLL(ids[s:s+c.Window], ids[s+1:s+c.Window+1])
		if err != nil {
			return nil, fmt.Errorf("ppl-curve: window at token %d: %w", s, err)
		}
		if err := checkFinite(nll, fmt.Sprintf("ppl-curve: window at token %d", s)); err != nil {
			return nil, err
		}
		for p, x := range nll {
			sums[p/c.Bucket] += x
			counts[p/c.Bucket]++
		}
		if progress != nil {
			progress(i + 1)
		}
	}
	out := make([]Bucket, nb)
	for b := range out {
		out[b] = Bucket{Start: b * c.Bucket, End: min((b+1)*c.Bucket, c.Window), Tokens: counts[b], MeanNLL: sums[b] / float64(counts[b])}
	}
	return out, nil
}
