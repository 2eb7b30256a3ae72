package freqkv

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

var cacheGeometries = []Config{
	{CacheSize: 16, Sink: 2, Recent: 3, Ratio: 0.5},   // R > 0, odd L = 11
	{CacheSize: 37, Sink: 4, Recent: 5, Ratio: 0.3},   // odd L = 28 -> m = 8
	{CacheSize: 20, Sink: 0, Recent: 0, Ratio: 0.5},   // no sinks
	{CacheSize: 50, Sink: 1, Recent: 7, Ratio: 0.75},  // period 11
	{CacheSize: 7, Sink: 4, Recent: 0, Ratio: 0.5},    // L = 3, m = 1
	{CacheSize: 12, Sink: 1, Recent: 1, Ratio: 0.9},   // period 1: compression at every token
	{CacheSize: 4096, Sink: 4, Recent: 0, Ratio: 0.5}, // the reference's default, L = 4092
}

// feed appends tokens to a new cache in groups of the given sizes (summing to len(keys)).
func feed(t *testing.T, c Config, keys, values [][]float64, groups []int) *RefCache {
	t.Helper()
	cache, err := NewRefCache(c, len(keys[0]))
	require.NoError(t, err)
	next := 0
	for _, size := range groups {
		require.NoError(t, cache.Append(keys[next:next+size], values[next:next+size]))
		require.LessOrEqual(t, cache.Rows(), c.CacheSize)
		next += size
	}
	require.Equal(t, len(keys), next)
	return cache
}

func TestRefCacheGroupingGivesIdenticalRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	const channels = 3
	for _, c := range cacheGeometries {
		t.Run(fmt.Sprintf("N%d_S%d_R%d_g%g", c.CacheSize, c.Sink, c.Recent, c.Ratio), func(t *testing.T) {
			tokens := 3*c.CacheSize + rng.IntN(c.CacheSize)
			keys, values := randomRows(rng, tokens, channels), randomRows(rng, tokens, channels)

			oneByOne := make([]int, tokens)
			for i := range oneByOne {
				oneByOne[i] = 1
			}
			var randomGroups []int
			for left := tokens; left > 0; {
				size := min(left, 1+rng.IntN(2*c.CacheSize))
				randomGroups = append(randomGroups, size)
				left -= size
			}

			byToken := feed(t, c, keys, values, oneByOne)
			allAtOnce := feed(t, c, keys, values, []int{tokens})
			byGroups := feed(t, c, keys, values, randomGroups)

			plan, err := c.Plan(0, tokens)
			require.NoError(t, err)
			wantCompressions, wantRows := 0, 0
			for _, s := range plan {
				if s.Kind == StepCompress {
					wantCompressions++
					wantRows -= s.Rows
				} else {
					wantRows += s.Rows
				}
			}
			require.Positive(t, wantCompressions)
			for _, cache := range []*RefCache{byToken, allAtOnce, byGroups} {
				require.Equal(t, wantCompressions, cache.Compressions())
				require.Equal(t, wantRows, cache.Rows())
				require.Len(t, cache.Keys(), wantRows)
			}
			// The same compressions run on the same rows in the same order: bit-identical.
			require.Equal(t, byToken.Keys(), allAtOnce.Keys())
			require.Equal(t, byToken.Values(), allAtOnce.Values())
			require.Equal(t, byToken.Keys(), byGroups.Keys())
			require.Equal(t, byToken.Values(), byGroups.Values())

			// Sinks are never touched; the rows since the last compression are raw.
			require.Equal(t, keys[:c.Sink], byToken.Keys()[:c.Sink])
			sinceCompression := plan[len(plan)-1].Rows
			require.Equal(t, values[tokens-sinceCompression:], byToken.Values()[wantRows-sinceCompression:])
		})
	}
}

// naiveCache is an independent model of the cache semantics of docs/freqkv.md: a list of rows,
// compressed with the O(L*m) cosine sums when full and a token needs a row.
type naiveCache struct {
	cfg          Config
	keys, values [][]float64
}

func (n *naiveCache) add(key, value []float64) {
	if len(n.keys) == n.cfg.CacheSize {
		n.keys, n.values = n.compressRows(n.keys), n.compressRows(n.values)
	}
	n.keys, n.values = append(n.keys, key), append(n.values, value)
}

func (n *naiveCache) compressRows(rows [][]float64) [][]float64 {
	s, l, m := n.cfg.Sink, n.cfg.Span(), n.cfg.Kept()
	channels := len(rows[0])
	compressed := make([][]float64, m)
	for j := range compressed {
		compressed[j] = make([]float64, channels)
	}
	for ch := range channels {
		signal := make([]float64, l)
		for i := range signal {
			signal[i] = rows[s+i][ch]
		}
		for j, v := range cosineCompress(signal, m) {
			compressed[j][ch] = v
		}
	}
	out := append([][]float64{}, rows[:s]...)
	out = append(out, compressed...)
	return append(out, rows[s+l:]...)
}

func TestRefCacheMatchesIndependentModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	const channels = 3
	for _, c := range cacheGeometries {
		if c.CacheSize > 100 {
			continue // the O(L*m) model is too slow for the long spans; covered above
		}
		tokens := 5*c.CacheSize + rng.IntN(c.CacheSize)
		keys, values := randomRows(rng, tokens, channels), randomRows(rng, tokens, channels)
		model := &naiveCache{cfg: c}
		cache, err := NewRefCache(c, channels)
		require.NoError(t, err)
		for i := range tokens {
			model.add(keys[i], values[i])
			require.NoError(t, cache.Append(keys[i:i+1], values[i:i+1]))
			require.Equal(t, len(model.keys), cache.Rows(), "%+v token %d", c, i)
		}
		gotKeys, gotValues := cache.Keys(), cache.Values()
		for row := range model.keys {
			assertClose(t, gotKeys[row], model.keys[row], 1e-13, fmt.Sprintf("%+v key row %d", c, row))
			assertClose(t, gotValues[row], model.values[row], 1e-13, fmt.Sprintf("%+v value row %d", c, row))
		}
	}
}

func TestRefCacheRejectsBadInput(t *testing.T) {
	c := Config{CacheSize: 8, Sink: 1, Recent: 1, Ratio: 0.5}
	_, err := NewRefCache(c, 0)
	require.ErrorContains(t, err, "0 channels")
	_, err = NewRefCache(Config{CacheSize: 8, Sink: 8, Ratio: 0.5}, 2)
	require.ErrorContains(t, err, "leaves no span")

	cache, err := NewRefCache(c, 2)
	require.NoError(t, err)
	require.Equal(t, c, cache.Config())
	require.Equal(t, 2, cache.Channels())
	require.NoError(t, cache.Append([][]float64{{1, 2}}, [][]float64{{3, 4}}))

	require.ErrorContains(t, cache.Append([][]float64{{1, 2}}, nil), "1 key rows but 0 value rows")
	require.ErrorContains(t, cache.Append([][]float64{{1, 2}, {1}}, [][]float64{{1, 2}, {1, 2}}),
		"row 1 has 1 key and 2 value channels, want 2")
	require.Equal(t, 1, cache.Rows(), "a rejected append must leave the cache unchanged")
	require.Equal(t, [][]float64{{1, 2}}, cache.Keys())
	require.Equal(t, [][]float64{{3, 4}}, cache.Values())
}
