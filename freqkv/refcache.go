package freqkv

import "fmt"

// RefCache is the float64 reference of one layer's FreqKV cache: keys (stored before
// RoPE) and values, channels = kv_heads * head_dim values per row, driven by Config.Plan.
// It is the oracle the GPU cache is tested against, not a fast path.
type RefCache struct {
	cfg          Config
	channels     int
	keys, values []float64 // rows x channels, row-major
	compressor   *Compressor
	compressions int
}

// NewRefCache returns an empty cache with the geometry cfg and rows of channels values.
func NewRefCache(cfg Config, channels int) (*RefCache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if channels < 1 {
		return nil, fmt.Errorf("freqkv: reference cache with %d channels; it needs at least 1", channels)
	}
	compressor, err := NewCompressorAblation(cfg.Span(), cfg.Kept(), cfg.Keep, cfg.Scale)
	if err != nil {
		return nil, fmt.Errorf("freqkv: reference cache: %w", err)
	}
	return &RefCache{
		cfg:        cfg,
		channels:   channels,
		keys:       make([]float64, 0, cfg.CacheSize*channels),
		values:     make([]float64, 0, cfg.CacheSize*channels),
		compressor: compressor,
	}, nil
}

// Append stores the rows of new tokens, one key and one value row each, compressing
// whenever a full cache must take a row, exactly as Config.Plan says. Any number of
// tokens may come at once; the result does not depend on how they are grouped. Rejected
// input leaves the cache unchanged.
func (c *RefCache) Append(keys, values [][]float64) error {
	if len(keys) != len(values) {
		return fmt.Errorf("freqkv: append of %d key rows but %d value rows", len(keys), len(values))
	}
	for i := range keys {
		if len(keys[i]) != c.channels || len(values[i]) != c.channels {
			return fmt.Errorf("freqkv: appended row %d has %d key and %d value channels, want %d",
				i, len(keys[i]), len(values[i]), c.channels)
		}
	}
	steps, err := c.cfg.Plan(c.Rows(), len(keys))
	if err != nil {
		return fmt.Errorf("freqkv: append: %w", err)
	}
	next := 0
	for _, step := range steps {
		switch step.Kind {
		case StepCompress:
			if err := c.compress(); err != nil {
				return err
			}
		case StepAppend:
			for _, row := range keys[next : next+step.Rows] {
				c.keys = append(c.keys, row...)
			}
			for _, row := range values[next : next+step.Rows] {
				c.values = append(c.values, row...)
			}
			next += step.Rows
		}
	}
	return nil
}

// compress replaces rows [S, S+L) of the full cache by their m-row resampling and moves
// the R recent rows up behind them; the sink rows are untouched.
func (c *RefCache) compress() error {
	s, l, m, ch := c.cfg.Sink, c.cfg.Span(), c.cfg.Kept(), c.channels
	for _, data := range []*[]float64{&c.keys, &c.values} {
		rows := *data
		span := rows[s*ch : (s+l)*ch]
		if err := c.compressor.Compress(span[:m*ch], span, ch); err != nil {
			return fmt.Errorf("freqkv: reference cache compression: %w", err)
		}
		moved := copy(rows[(s+m)*ch:], rows[(s+l)*ch:])
		*data = rows[:(s+m)*ch+moved]
	}
	c.compressions++
	return nil
}

// Config is the cache's geometry.
func (c *RefCache) Config() Config { return c.cfg }

// Channels is the number of values in each key or value row.
func (c *RefCache) Channels() int { return c.channels }

// Rows is the number of rows the cache holds, at most CacheSize.
func (c *RefCache) Rows() int { return len(c.keys) / c.channels }

// Compressions is how many compressions the cache has gone through.
func (c *RefCache) Compressions() int { return c.compressions }

// Keys returns a copy of the key rows, pre-RoPE; row i has position i.
func (c *RefCache) Keys() [][]float64 { return splitRows(c.keys, c.channels) }

// Values returns a copy of the value rows.
func (c *RefCache) Values() [][]float64 { return splitRows(c.values, c.channels) }

func splitRows(flat []float64, width int) [][]float64 {
	rows := make([][]float64, len(flat)/width)
	for i := range rows {
		rows[i] = append([]float64(nil), flat[i*width:(i+1)*width]...)
	}
	return rows
}
