package freqkv

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// randomConfig draws a valid geometry with a cache of at most maxCache rows.
func randomConfig(rng *rand.Rand, maxCache int) Config {
	ratios := []float64{0.5, 0.25, 0.75, 0.3, 0.9, 0.1}
	for {
		n := 2 + rng.IntN(maxCache-1)
		c := Config{CacheSize: n, Sink: rng.IntN(n / 2), Recent: rng.IntN(n / 2), Ratio: ratios[rng.IntN(len(ratios))]}
		if c.Validate() == nil {
			return c
		}
	}
}

func mergeAppends(steps []Step) []Step {
	var merged []Step
	for _, s := range steps {
		if last := len(merged) - 1; last >= 0 && s.Kind == StepAppend && merged[last].Kind == StepAppend {
			merged[last].Rows += s.Rows
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// checkPlan replays steps from rows held and checks the trigger's invariants; it returns
// the rows held at the end.
func checkPlan(t *testing.T, c Config, rows, incoming int, steps []Step) int {
	t.Helper()
	appended := 0
	for i, s := range steps {
		switch s.Kind {
		case StepCompress:
			require.Equal(t, c.CacheSize, rows, "step %d: compression of a cache that is not full", i)
			require.Equal(t, c.Period(), s.Rows, "step %d", i)
			require.Less(t, i+1, len(steps), "compression with no token to follow")
			require.Equal(t, StepAppend, steps[i+1].Kind, "step %d: a compression must make room for a token", i)
			rows -= s.Rows
			require.Equal(t, c.RowsAfterCompression(), rows)
		case StepAppend:
			require.Positive(t, s.Rows, "step %d: empty append", i)
			// The last token of the step sits at row rows+s.Rows-1, its position.
			require.LessOrEqual(t, rows+s.Rows-1, c.CacheSize-1, "step %d: position beyond N-1", i)
			rows += s.Rows
			appended += s.Rows
			if appended < incoming {
				require.Equal(t, c.CacheSize, rows, "step %d: append stopped short of a full cache", i)
			}
		default:
			t.Fatalf("step %d: unknown kind %v", i, s.Kind)
		}
		require.LessOrEqual(t, rows, c.CacheSize)
	}
	require.Equal(t, incoming, appended)
	return rows
}

func TestPlanTokenByTokenEqualsGrouped(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	configs := []Config{DefaultConfig(4096), {CacheSize: 7, Sink: 4, Ratio: 0.5}, {CacheSize: 2, Ratio: 0.5}}
	for range 300 {
		configs = append(configs, randomConfig(rng, 64))
	}
	for _, c := range configs {
		startRows := rng.IntN(c.CacheSize + 1)
		incoming := rng.IntN(6 * c.CacheSize)
		if c.CacheSize == 4096 {
			startRows, incoming = 0, 3*4096+777
		}

		grouped, err := c.Plan(startRows, incoming)
		require.NoError(t, err)
		endRows := checkPlan(t, c, startRows, incoming, grouped)

		var perToken []Step
		rows := startRows
		for range incoming {
			steps, err := c.Plan(rows, 1)
			require.NoError(t, err)
			rows = checkPlan(t, c, rows, 1, steps)
			perToken = append(perToken, steps...)
		}
		require.Equal(t, endRows, rows, "%+v", c)
		require.Equal(t, grouped, mergeAppends(perToken), "%+v from %d rows, %d tokens", c, startRows, incoming)
	}
}

func TestPlanGroupsPrefill(t *testing.T) {
	c := DefaultConfig(4096)
	steps, err := c.Plan(0, 4096+2046+10)
	require.NoError(t, err)
	require.Equal(t, []Step{
		{StepAppend, 4096}, {StepCompress, 2046}, {StepAppend, 2046}, {StepCompress, 2046}, {StepAppend, 10},
	}, steps)

	steps, err = c.Plan(4096, 0)
	require.NoError(t, err)
	require.Empty(t, steps, "a full cache is compressed only when a token needs a row")

	steps, err = c.Plan(4096, 1)
	require.NoError(t, err)
	require.Equal(t, []Step{{StepCompress, 2046}, {StepAppend, 1}}, steps)
}

func TestPlanRejectsBadInput(t *testing.T) {
	c := Config{CacheSize: 16, Sink: 2, Recent: 2, Ratio: 0.5}
	_, err := c.Plan(17, 1)
	require.ErrorContains(t, err, "holding 17 rows, outside [0, 16]")
	_, err = c.Plan(-1, 1)
	require.ErrorContains(t, err, "holding -1 rows")
	_, err = c.Plan(3, -2)
	require.ErrorContains(t, err, "-2 incoming tokens")
	_, err = Config{CacheSize: 16, Sink: 8, Recent: 8, Ratio: 0.5}.Plan(0, 1)
	require.ErrorContains(t, err, "leaves no span")
}

func TestStepStrings(t *testing.T) {
	require.Equal(t, "Compress(2046)", Step{StepCompress, 2046}.String())
	require.Equal(t, "Append(3)", Step{StepAppend, 3}.String())
	require.Equal(t, "StepKind(0)", StepKind(0).String())
}
