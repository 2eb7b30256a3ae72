package freqkv

import (
	"fmt"
	"math"
)

// Config is the geometry of a FreqKV cache, shared by every layer and by keys and values.
type Config struct {
	CacheSize int     // N: the most rows a layer's cache ever holds
	Sink      int     // S: rows at the start, never compressed
	Recent    int     // R: rows at the end, left alone by a compression
	Ratio     float64 // g: fraction of the compressed span that is kept, in (0, 1)
	// Keep and Scale are ablations of the method (zero values: the method, KeepLow and
	// ScaleAmplitude).
	Keep  Keep
	Scale Scale
}

// DefaultConfig is the reference's geometry for a cache of cacheSize rows:
// 4 sink rows, no recent rows, half of the span kept at each compression.
func DefaultConfig(cacheSize int) Config {
	return Config{CacheSize: cacheSize, Sink: 4, Recent: 0, Ratio: 0.5}
}

// Validate reports, in terms a command-line user can act on, why the geometry cannot run.
func (c Config) Validate() error {
	switch {
	case c.CacheSize <= 0:
		return fmt.Errorf("freqkv: cache size %d must be positive; raise --cache-size", c.CacheSize)
	case c.Sink < 0:
		return fmt.Errorf("freqkv: sink %d is negative; use --sink 0 or more", c.Sink)
	case c.Recent < 0:
		return fmt.Errorf("freqkv: recent %d is negative; use --recent 0 or more", c.Recent)
	case !(c.Ratio > 0 && c.Ratio < 1): // also rejects NaN
		return fmt.Errorf("freqkv: retaining ratio %g is outside (0, 1); use e.g. --ratio 0.5", c.Ratio)
	case c.Keep != KeepLow && c.Keep != KeepHigh:
		return fmt.Errorf("freqkv: keep %v: use low or high", c.Keep)
	case c.Scale != ScaleAmplitude && c.Scale != ScaleEnergy:
		return fmt.Errorf("freqkv: scale %v: use amplitude or energy", c.Scale)
	case c.Sink+c.Recent >= c.CacheSize:
		return fmt.Errorf("freqkv: sink %d + recent %d leaves no span to compress in a cache of %d rows; "+
			"lower --sink/--recent or raise --cache-size", c.Sink, c.Recent, c.CacheSize)
	}
	span, kept := c.Span(), c.Kept()
	if kept < 1 {
		return fmt.Errorf("freqkv: ratio %g keeps floor(%d*%g) = %d of the %d compressible rows; "+
			"raise --ratio or --cache-size, or lower --sink/--recent", c.Ratio, span, c.Ratio, kept, span)
	}
	if kept >= span {
		return fmt.Errorf("freqkv: ratio %g keeps all %d compressible rows, so a compression frees none; "+
			"lower --ratio", c.Ratio, span)
	}
	return nil
}

// Span is L = N - S - R, the rows a compression transforms.
func (c Config) Span() int { return c.CacheSize - c.Sink - c.Recent }

// Kept is m = floor(L * g), the rows a compressed span becomes, with the product computed in
// float64 exactly as the reference's int(L * g): a ratio stored slightly below its decimal
// value keeps one row fewer (L = 100, g = 0.29 gives 28, as in the reference). Kept is 0 when
// there is no span or the ratio is outside (0, 1).
func (c Config) Kept() int {
	span := c.Span()
	if span <= 0 || !(c.Ratio > 0 && c.Ratio < 1) {
		return 0
	}
	return int(math.Floor(float64(span) * c.Ratio))
}

// Period is L - m: the rows a compression frees, hence the tokens between two compressions.
func (c Config) Period() int { return c.Span() - c.Kept() }

// RowsAfterCompression is S + m + R, the rows a full cache holds right after a compression.
func (c Config) RowsAfterCompression() int { return c.Sink + c.Kept() + c.Recent }

// KVBytes is the memory of the N-row key and value caches of all layers, the most the cache
// ever takes: 2 * N * layers * kvHeads * headDim * bytesPerElem. It is 0 if any argument
// (or the cache size) is not positive.
func (c Config) KVBytes(layers, kvHeads, headDim, bytesPerElem int) int64 {
	if c.CacheSize <= 0 || layers <= 0 || kvHeads <= 0 || headDim <= 0 || bytesPerElem <= 0 {
		return 0
	}
	return 2 * int64(c.CacheSize) * int64(layers) * int64(kvHeads) * int64(headDim) * int64(bytesPerElem)
}
