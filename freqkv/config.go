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

// Field names a Config field, so errors can say which values conflict.
type Field string

const (
	FieldCacheSize Field = "CacheSize"
	FieldSink      Field = "Sink"
	FieldRecent    Field = "Recent"
	FieldRatio     Field = "Ratio"
	FieldKeep      Field = "Keep"
	FieldScale     Field = "Scale"
)

// ConfigError says why a Config cannot run and which fields are involved.
type ConfigError struct {
	Fields []Field
	Msg    string
}

func (e *ConfigError) Error() string { return "freqkv: " + e.Msg }

func configErr(msg string, fields ...Field) error { return &ConfigError{Fields: fields, Msg: msg} }

// Validate reports, as a *ConfigError, why the geometry cannot run.
func (c Config) Validate() error {
	switch {
	case c.CacheSize <= 0:
		return configErr(fmt.Sprintf("cache size %d must be positive", c.CacheSize), FieldCacheSize)
	case c.Sink < 0:
		return configErr(fmt.Sprintf("sink %d is negative", c.Sink), FieldSink)
	case c.Recent < 0:
		return configErr(fmt.Sprintf("recent %d is negative", c.Recent), FieldRecent)
	case !(c.Ratio > 0 && c.Ratio < 1): // also rejects NaN
		return configErr(fmt.Sprintf("retaining ratio %g is outside (0, 1), e.g. 0.5", c.Ratio), FieldRatio)
	case c.Keep != KeepLow && c.Keep != KeepHigh:
		return configErr(fmt.Sprintf("keep %v: use low or high", c.Keep), FieldKeep)
	case c.Scale != ScaleAmplitude && c.Scale != ScaleEnergy:
		return configErr(fmt.Sprintf("scale %v: use amplitude or energy", c.Scale), FieldScale)
	case c.Sink+c.Recent >= c.CacheSize:
		return configErr(fmt.Sprintf("sink %d + recent %d leaves no span to compress in a cache of %d rows; "+
			"the size must exceed sink + recent", c.Sink, c.Recent, c.CacheSize), FieldSink, FieldRecent, FieldCacheSize)
	}
	span, kept := c.Span(), c.Kept()
	if kept < 1 {
		return configErr(fmt.Sprintf("ratio %g keeps floor(%d*%g) = %d of the %d compressible rows; "+
			"a larger ratio or span (size - sink - recent) keeps at least one", c.Ratio, span, c.Ratio, kept, span),
			FieldRatio, FieldCacheSize, FieldSink, FieldRecent)
	}
	if kept >= span {
		return configErr(fmt.Sprintf("ratio %g keeps all %d compressible rows, so a compression frees none; "+
			"a smaller ratio frees some", c.Ratio, span), FieldRatio)
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
