package cpuref

import (
	"fmt"
	"sort"

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

// heavyCache is the h2o policy (kvcache's HeavyHitter): on FreqKV's schedule, each KV head
// keeps of the span [S, S+L) the m rows that received the most attention so far (ties to
// the older row), in order, then the R recent rows. Heads keep different rows, so a cache
// row is composite: head g's channels of row i are head g's i-th kept row; row i has
// position i. mass[g][i] is the attention row i received from the query heads of g.
type heavyCache struct {
	cfg          freqkv.Config
	kvHeads, hd  int
	keys, values [][]float64
	mass         [][]float64 // [kv head][row]
}

func newHeavyCache(cfg freqkv.Config, kvHeads, headDim int) *heavyCache {
	return &heavyCache{cfg: cfg, kvHeads: kvHeads, hd: headDim, mass: make([][]float64, kvHeads)}
}

func (c *heavyCache) put(_ int, keys, values [][]float64) ([]view, error) {
	n, rows := c.cfg.CacheSize, len(c.keys)
	if rows == n {
		c.evict()
		rows = len(c.keys)
	}
	if rows+len(keys) > n {
		// The eviction would need the attention of this group's earlier tokens.
		return nil, fmt.Errorf("cpuref: an h2o cache takes a group only up to its next eviction (%d rows free, %d tokens); feed tokens one by one", n-rows, len(keys))
	}
	for i := range keys {
		c.keys = append(c.keys, append([]float64(nil), keys[i]...))
		c.values = append(c.values, append([]float64(nil), values[i]...))
		for g := range c.mass {
			c.mass[g] = append(c.mass[g], 0)
		}
	}
	views := make([]view, len(keys))
	for i := range views {
		r := rows + i
		views[i] = view{keys: c.keys[:r+1], values: c.values[:r+1], keyPos: positions(0, r+1), queryPos: r}
	}
	return views, nil
}

func (c *heavyCache) evict() {
	s, l, m, r := c.cfg.Sink, c.cfg.Span(), c.cfg.Kept(), c.cfg.Recent
	rows := s + m + r
	keys, values := make([][]float64, rows), make([][]float64, rows)
	for i := range rows {
		keys[i] = make([]float64, c.kvHeads*c.hd)
		values[i] = make([]float64, c.kvHeads*c.hd)
	}
	for g := range c.kvHeads {
		span := make([]int, l)
		for i := range span {
			span[i] = s + i
		}
		mass := c.mass[g]
		sort.SliceStable(span, func(a, b int) bool { return mass[span[a]] > mass[span[b]] })
		kept := append([]int(nil), span[:m]...)
		sort.Ints(kept)
		src := make([]int, 0, rows)
		for i := range s {
			src = append(src, i)
		}
		src = append(src, kept...)
		for j := range r {
			src = append(src, s+l+j)
		}
		next := make([]float64, rows)
		lo, hi := g*c.hd, (g+1)*c.hd
		for i, from := range src {
			copy(keys[i][lo:hi], c.keys[from][lo:hi])
			copy(values[i][lo:hi], c.values[from][lo:hi])
			next[i] = mass[from]
		}
		c.mass[g] = next
	}
	c.keys, c.values = keys, values
}

// addMass adds the probabilities one query head of KV head g gave rows 0.. .
func (c *heavyCache) addMass(g int, probs []float64) {
	for j, p := range probs {
		c.mass[g][j] += p
	}
}

func (c *heavyCache) held() (keys, values [][]float64) { return c.keys, c.values }
