package freqkv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// naiveAttention is an independent reference: complex-number RoPE, explicit softmax
// without the max shift, query head h reading kv head h*kvHeads/heads.
func naiveAttention(q []float64, keys, values [][]float64, pos int, p AttentionParams) []float64 {
	d := p.HeadDim
	rq := complexRope(q, pos, d, p.RopeBase, p.NeoX)
	out := make([]float64, p.Heads*d)
	for h := range p.Heads {
		kv := h * p.KVHeads / p.Heads
		weights := make([]float64, pos+1)
		var total float64
		for j := 0; j <= pos; j++ {
			rk := complexRope(keys[j][kv*d:(kv+1)*d], j, d, p.RopeBase, p.NeoX)
			weights[j] = math.Exp(dot(rq[h*d:(h+1)*d], rk) / math.Sqrt(float64(d)))
			total += weights[j]
		}
		for j, w := range weights {
			for i := range d {
				out[h*d+i] += w * values[j][kv*d+i] / total
			}
		}
	}
	return out
}

var attentionShapes = []AttentionParams{
	{Heads: 4, KVHeads: 2, HeadDim: 8, RopeBase: 10000},
	{Heads: 4, KVHeads: 2, HeadDim: 8, RopeBase: 10000, NeoX: true},
	{Heads: 3, KVHeads: 3, HeadDim: 4, RopeBase: 500000},
	{Heads: 6, KVHeads: 1, HeadDim: 16, RopeBase: 10000, NeoX: true},
}

func TestRefAttentionMatchesNaiveReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	for _, p := range attentionShapes {
		const rows = 40
		keys := randomRows(rng, rows, p.KVHeads*p.HeadDim)
		values := randomRows(rng, rows, p.KVHeads*p.HeadDim)
		for _, pos := range []int{0, 1, 17, rows - 1} {
			q := randomNonZero(rng, p.Heads*p.HeadDim)
			got, err := RefAttention(q, keys, values, pos, p)
			require.NoError(t, err)
			assertClose(t, got, naiveAttention(q, keys, values, pos, p), 1e-13, fmt.Sprintf("%+v pos %d", p, pos))
		}
	}
}

func TestRefAttentionIsCausalAndUsesTheRightKVHead(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	p := AttentionParams{Heads: 4, KVHeads: 2, HeadDim: 8, RopeBase: 10000}
	width := p.KVHeads * p.HeadDim
	keys, values := randomRows(rng, 10, width), randomRows(rng, 10, width)
	q := randomNonZero(rng, p.Heads*p.HeadDim)

	before, err := RefAttention(q, keys, values, 5, p)
	require.NoError(t, err)
	for row := 6; row < 10; row++ {
		keys[row], values[row] = randomNonZero(rng, width), randomNonZero(rng, width)
	}
	after, err := RefAttention(q, keys, values, 5, p)
	require.NoError(t, err)
	require.Equal(t, before, after, "rows after the query's own must not matter")

	// A single visible row: every head returns its kv head's value row.
	single, err := RefAttention(q, keys, values, 0, p)
	require.NoError(t, err)
	for h := range p.Heads {
		kv := h / 2
		assertClose(t, single[h*8:(h+1)*8], values[0][kv*8:(kv+1)*8], 1e-15, fmt.Sprintf("head %d", h))
	}

	// Zero keys give uniform weights: the output is the mean of the visible values.
	zeroKeys := randomRows(rng, 10, width)
	for _, k := range zeroKeys {
		clear(k)
	}
	uniform, err := RefAttention(q, zeroKeys, values, 3, p)
	require.NoError(t, err)
	for h := range p.Heads {
		kv := h / 2
		for i := range 8 {
			visible := 0.0
			for row := range 4 {
				visible += values[row][kv*8+i]
			}
			require.InDelta(t, visible/4, uniform[h*8+i], 1e-15, "head %d channel %d", h, i)
		}
	}
}

// The grouped path (append a group, then each of its tokens attends causally) gives the
// same outputs as the token-by-token path, bit for bit, because both follow Config.Plan.
func TestGroupedAttentionEqualsTokenByToken(t *testing.T) {
	rng := rand.New(rand.NewPCG(55, 56))
	p := AttentionParams{Heads: 4, KVHeads: 2, HeadDim: 4, RopeBase: 10000}
	width := p.KVHeads * p.HeadDim
	for _, c := range []Config{{CacheSize: 16, Sink: 2, Recent: 3, Ratio: 0.5}, {CacheSize: 37, Sink: 4, Recent: 5, Ratio: 0.3}} {
		tokens := 4 * c.CacheSize
		queries := randomRows(rng, tokens, p.Heads*p.HeadDim)
		keys, values := randomRows(rng, tokens, width), randomRows(rng, tokens, width)

		byToken, err := NewRefCache(c, width)
		require.NoError(t, err)
		var tokenOutputs [][]float64
		for i := range tokens {
			require.NoError(t, byToken.Append(keys[i:i+1], values[i:i+1]))
			pos := byToken.Rows() - 1
			require.Less(t, pos, c.CacheSize)
			out, err := RefAttention(queries[i], byToken.Keys(), byToken.Values(), pos, p)
			require.NoError(t, err)
			tokenOutputs = append(tokenOutputs, out)
		}

		grouped, err := NewRefCache(c, width)
		require.NoError(t, err)
		plan, err := c.Plan(0, tokens)
		require.NoError(t, err)
		var groupOutputs [][]float64
		next := 0
		for _, step := range plan {
			if step.Kind != StepAppend {
				continue // the cache compresses by itself when the group needs room
			}
			require.NoError(t, grouped.Append(keys[next:next+step.Rows], values[next:next+step.Rows]))
			start := grouped.Rows() - step.Rows
			cachedKeys, cachedValues := grouped.Keys(), grouped.Values()
			for i := range step.Rows {
				out, err := RefAttention(queries[next+i], cachedKeys, cachedValues, start+i, p)
				require.NoError(t, err)
				groupOutputs = append(groupOutputs, out)
			}
			next += step.Rows
		}
		require.Equal(t, tokenOutputs, groupOutputs, "%+v", c)
	}
}

func TestRefAttentionRejectsBadInput(t *testing.T) {
	p := AttentionParams{Heads: 4, KVHeads: 2, HeadDim: 2, RopeBase: 10000}
	rows := [][]float64{{1, 2, 3, 4}, {1, 2, 3, 4}}
	q := make([]float64, 8)
	for _, tc := range []struct {
		name    string
		params  AttentionParams
		query   []float64
		keys    [][]float64
		values  [][]float64
		pos     int
		message string
	}{
		{"kv heads do not divide", AttentionParams{Heads: 4, KVHeads: 3, HeadDim: 2, RopeBase: 1e4}, q, rows, rows, 0, "4 heads and 3 kv heads"},
		{"no kv heads", AttentionParams{Heads: 4, HeadDim: 2, RopeBase: 1e4}, q, rows, rows, 0, "0 kv heads"},
		{"short query", p, q[:6], rows, rows, 0, "query has 6 values, want 4 heads x 2"},
		{"rows differ", p, q, rows, rows[:1], 0, "2 key rows but 1 value rows"},
		{"pos past cache", p, q, rows, rows, 2, "row 2 outside the cache's 2 rows"},
		{"negative pos", p, q, rows, rows, -1, "row -1 outside"},
		{"narrow row", p, q, [][]float64{{1, 2, 3, 4}, {1}}, rows, 1, "row 1 has 1 key and 4 value channels, want 4"},
		{"odd head dim", AttentionParams{Heads: 2, KVHeads: 2, HeadDim: 3, RopeBase: 1e4}, make([]float64, 6),
			[][]float64{make([]float64, 6)}, [][]float64{make([]float64, 6)}, 0, "dimension 3 must be even"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RefAttention(tc.query, tc.keys, tc.values, tc.pos, tc.params)
			require.ErrorContains(t, err, tc.message)
		})
	}
}
