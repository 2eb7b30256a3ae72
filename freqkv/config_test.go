package freqkv

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDefaultConfigIsTheReferenceGeometry(t *testing.T) {
	c := DefaultConfig(4096)
	require.Equal(t, Config{CacheSize: 4096, Sink: 4, Recent: 0, Ratio: 0.5}, c)
	require.NoError(t, c.Validate())
	require.Equal(t, 4092, c.Span())
	require.Equal(t, 2046, c.Kept())
	require.Equal(t, 2046, c.Period())
	require.Equal(t, 2050, c.RowsAfterCompression())
}

func TestDerivedLengths(t *testing.T) {
	for _, tc := range []struct {
		cfg                   Config
		span, kept            int
		period, afterCompress int
	}{
		{Config{CacheSize: 4096, Sink: 4, Ratio: 0.5}, 4092, 2046, 2046, 2050},
		{Config{CacheSize: 7, Sink: 4, Ratio: 0.5}, 3, 1, 2, 5},
		{Config{CacheSize: 20, Sink: 2, Recent: 3, Ratio: 0.25}, 15, 3, 12, 8},
		{Config{CacheSize: 1028, Sink: 4, Ratio: 0.5}, 1024, 512, 512, 516},
		// The float64 product is floored like the reference's int(L*g): 100*0.29 is
		// 28.999999999999996 in float64, so 28 rows are kept, not 29.
		{Config{CacheSize: 100, Ratio: 0.29}, 100, 28, 72, 28},
		{Config{CacheSize: 30, Ratio: 0.1}, 30, 3, 27, 3},
		{Config{CacheSize: 10, Ratio: 0.7}, 10, 7, 3, 7},
		{Config{CacheSize: 1000, Ratio: 0.57}, 1000, 570, 430, 570},
		// A genuine fraction is floored.
		{Config{CacheSize: 37, Sink: 4, Recent: 5, Ratio: 0.3}, 28, 8, 20, 17},
	} {
		require.NoError(t, tc.cfg.Validate(), "%+v", tc.cfg)
		require.Equal(t, tc.span, tc.cfg.Span(), "span of %+v", tc.cfg)
		require.Equal(t, tc.kept, tc.cfg.Kept(), "kept of %+v", tc.cfg)
		require.Equal(t, tc.period, tc.cfg.Period(), "period of %+v", tc.cfg)
		require.Equal(t, tc.afterCompress, tc.cfg.RowsAfterCompression(), "rows after compression of %+v", tc.cfg)
	}
}

func TestValidateExplainsTheProblem(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		message string
	}{
		{"no span", Config{CacheSize: 4096, Sink: 4, Recent: 4092, Ratio: 0.5},
			"freqkv: sink 4 + recent 4092 leaves no span to compress in a cache of 4096 rows; the size must exceed sink + recent"},
		{"span negative", Config{CacheSize: 8, Sink: 6, Recent: 6, Ratio: 0.5}, "sink 6 + recent 6 leaves no span"},
		{"zero cache", Config{CacheSize: 0, Ratio: 0.5}, "cache size 0 must be positive"},
		{"negative sink", Config{CacheSize: 16, Sink: -1, Ratio: 0.5}, "sink -1 is negative"},
		{"negative recent", Config{CacheSize: 16, Recent: -2, Ratio: 0.5}, "recent -2 is negative"},
		{"ratio zero", Config{CacheSize: 16, Ratio: 0}, "ratio 0 is outside (0, 1)"},
		{"ratio one", Config{CacheSize: 16, Ratio: 1}, "ratio 1 is outside (0, 1)"},
		{"ratio above one", Config{CacheSize: 16, Ratio: 1.5}, "ratio 1.5 is outside (0, 1)"},
		{"ratio NaN", Config{CacheSize: 16, Ratio: math.NaN()}, "ratio NaN is outside (0, 1)"},
		{"nothing kept", Config{CacheSize: 7, Sink: 4, Ratio: 0.3}, "ratio 0.3 keeps floor(3*0.3) = 0 of the 3 compressible rows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			require.ErrorContains(t, err, tc.message)
			require.NotContains(t, err.Error(), "--", "a library error names no CLI flag")
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			require.NotEmpty(t, ce.Fields)
		})
	}
}

func TestKeptFloorsTheFloat64Product(t *testing.T) {
	// A ratio just below 1 keeps one row fewer than the span, as int(L*g) does; a product
	// of a ratio below 1 never reaches the span in float64, so Validate's "keeps all" case
	// cannot be reached through Kept.
	c := Config{CacheSize: 1 << 20, Ratio: 1 - 1e-13}
	require.NoError(t, c.Validate())
	require.Equal(t, 1<<20-1, c.Kept())
	require.Equal(t, 1, c.Period())
	require.Equal(t, 8, Config{CacheSize: 28, Ratio: 0.3}.Kept())
}

func TestKeptIsZeroWithoutAValidRatioOrSpan(t *testing.T) {
	require.Zero(t, Config{CacheSize: 16, Ratio: 1e308}.Kept())
	require.Zero(t, Config{CacheSize: 16, Ratio: math.Inf(1)}.Kept())
	require.Zero(t, Config{CacheSize: 16, Ratio: -0.5}.Kept())
	require.Zero(t, Config{CacheSize: 4, Sink: 4, Ratio: 0.5}.Kept())
}
