package freqkv

import "fmt"

// StepKind says what a Step does to the cache.
type StepKind int

const (
	// StepAppend writes new tokens' rows at the end of the cache.
	StepAppend StepKind = iota + 1
	// StepCompress replaces rows [S, S+L) of a full cache by m rows and moves the R recent rows up.
	StepCompress
)

func (k StepKind) String() string {
	switch k {
	case StepAppend:
		return "Append"
	case StepCompress:
		return "Compress"
	default:
		return fmt.Sprintf("StepKind(%d)", int(k))
	}
}

// Step is one action on a cache. Rows is how many rows it adds (StepAppend) or frees
// (StepCompress, always Period()).
type Step struct {
	Kind StepKind
	Rows int
}

func (s Step) String() string { return fmt.Sprintf("%v(%d)", s.Kind, s.Rows) }

// Plan is the one trigger rule of FreqKV, used by the token-by-token and the grouped
// paths alike: for a cache holding rows rows that receives incoming new tokens, the
// steps to take in order. Each StepAppend is as large as the free space allows; a
// StepCompress comes only when the cache is full and another token needs a row, never
// ahead of time.
//
// Token by token is Plan(rows, 1) at each token. Grouped prefill is one Plan(rows, T):
// the first StepAppend fills the cache to N (those tokens attend causally), then each
// StepCompress is followed by a group of at most Period() tokens, which attends to the
// compressed cache and causally within itself. The i-th token of a StepAppend that
// starts at cache row r occupies row r+i, its RoPE position, always below N.
func (c Config) Plan(rows, incoming int) ([]Step, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if rows < 0 || rows > c.CacheSize {
		return nil, fmt.Errorf("freqkv: plan for a cache holding %d rows, outside [0, %d]", rows, c.CacheSize)
	}
	if incoming < 0 {
		return nil, fmt.Errorf("freqkv: plan for %d incoming tokens, which is negative", incoming)
	}
	var steps []Step
	for incoming > 0 {
		if rows == c.CacheSize {
			steps = append(steps, Step{Kind: StepCompress, Rows: c.Period()})
			rows -= c.Period()
		}
		n := min(c.CacheSize-rows, incoming)
		steps = append(steps, Step{Kind: StepAppend, Rows: n})
		rows += n
		incoming -= n
	}
	return steps, nil
}
