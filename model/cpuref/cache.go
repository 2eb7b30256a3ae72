package cpuref

import (
	"fmt"

	"github.com/freqkv/freqkv/freqkv"
)

// view is what one query attends to: key and value rows (keys before RoPE) with each key's
// RoPE position, and the query's own position.
type view struct {
	keys, values [][]float64
	keyPos       []int
	queryPos     int
}

// layerCache is one layer's KV cache under a policy.
type layerCache interface {
	// put stores the key and value rows of a group of consecutive tokens, the first at logical
	// row first (the number of tokens seen before), and returns the view of each token: the
	// rows present for it, causally. The session has checked that the rows fit.
	put(first int, keys, values [][]float64) ([]view, error)
	// held returns the rows the cache holds in cache order (the view of the latest token).
	held() (keys, values [][]float64)
}

// positions returns first, first+1, ..., first+n-1.
func positions(first, n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = first + i
	}
	return p
}

// fullCache keeps every row: row j has position j. With a sliding window W (Mistral), the
// query at row r sees only rows r-W+1..r, at their own positions.
type fullCache struct {
	keys, values [][]float64
	window       int // 0: no window
}

func (c *fullCache) put(first int, keys, values [][]float64) ([]view, error) {
	c.keys = append(c.keys, keys...)
	c.values = append(c.values, values...)
	views := make([]view, len(keys))
	for i := range views {
		r := first + i
		lo := 0
		if c.window > 0 {
			lo = max(0, r-c.window+1)
		}
		views[i] = view{keys: c.keys[lo : r+1], values: c.values[lo : r+1], keyPos: positions(lo, r+1-lo), queryPos: r}
	}
	return views, nil
}

func (c *fullCache) held() (keys, values [][]float64) { return c.keys, c.values }

// windowCache is StreamingLLM's: sinks [0, S) and the latest N-S rows, renumbered so that
// positions stay below N.
type windowCache struct {
	size, sink int // N, S

	sinkKeys, sinkValues [][]float64 // logical rows [0, min(S, rows))
	keys, values         [][]float64 // logical rows [start, rows), all >= S
	start                int         // S until rows are dropped
}

// low is the first non-sink row the query at logical row r sees.
func (c *windowCache) low(r int) int { return max(c.sink, r-(c.size-c.sink)+1) }

func (c *windowCache) put(first int, keys, values [][]float64) ([]view, error) {
	for i := range keys {
		if first+i < c.sink {
			c.sinkKeys = append(c.sinkKeys, keys[i])
			c.sinkValues = append(c.sinkValues, values[i])
		} else {
			c.keys = append(c.keys, keys[i])
			c.values = append(c.values, values[i])
		}
	}
	views := make([]view, len(keys))
	for i := range views {
		r := first + i
		sinks := min(c.sink, r+1)
		v := view{
			keys:     append([][]float64(nil), c.sinkKeys[:sinks]...),
			values:   append([][]float64(nil), c.sinkValues[:sinks]...),
			keyPos:   positions(0, sinks),
			queryPos: r,
		}
		if r >= c.sink {
			lo := c.low(r)
			v.keys = append(v.keys, c.keys[lo-c.start:r+1-c.start]...)
			v.values = append(v.values, c.values[lo-c.start:r+1-c.start]...)
			v.keyPos = append(v.keyPos, positions(c.sink, r+1-lo)...)
			v.queryPos = c.sink + (r - lo)
		}
		views[i] = v
	}
	// Keep what the next token can see: the rows the latest one saw.
	if last := first + len(keys) - 1; last >= c.sink {
		drop := c.low(last) - c.start
		c.keys = append([][]float64(nil), c.keys[drop:]...)
		c.values = append([][]float64(nil), c.values[drop:]...)
		c.start += drop
	}
	return views, nil
}

func (c *windowCache) held() (keys, values [][]float64) {
	return append(append([][]float64(nil), c.sinkKeys...), c.keys...),
		append(append([][]float64(nil), c.sinkValues...), c.values...)
}

// freqkvCache is a freqkv.RefCache: row i has position i, whatever rows were compressed.
type freqkvCache struct {
	ref *freqkv.RefCache
}

// put follows the FreqKV plan for the group: the tokens of each append step are appended
// (after the compression that precedes the step, if any) and attend to the cache as it then
// is, rows 0 to their own.
func (c *freqkvCache) put(_ int, keys, values [][]float64) ([]view, error) {
	steps, err := c.ref.Config().Plan(c.ref.Rows(), len(keys))
	if err != nil {
		return nil, fmt.Errorf("cpuref: %w", err)
	}
	var views []view
	next := 0
	for _, step := range steps {
		if step.Kind != freqkv.StepAppend {
			continue // the next Append compresses first, as the plan says
		}
		if err := c.ref.Append(keys[next:next+step.Rows], values[next:next+step.Rows]); err != nil {
			return nil, fmt.Errorf("cpuref: %w", err)
		}
		base := c.ref.Rows() - step.Rows // the step's tokens are the last rows
		cacheKeys, cacheValues := c.ref.Keys(), c.ref.Values()
		for i := range step.Rows {
			row := base + i
			views = append(views, view{
				keys: cacheKeys[:row+1], values: cacheValues[:row+1], keyPos: positions(0, row+1), queryPos: row,
			})
		}
		next += step.Rows
	}
	return views, nil
}

func (c *freqkvCache) held() (keys, values [][]float64) { return c.ref.Keys(), c.ref.Values() }
