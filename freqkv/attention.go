package freqkv

import (
	"fmt"
	"math"
)

// AttentionParams describes one layer's attention for RefAttention.
type AttentionParams struct {
	Heads    int     // query heads
	KVHeads  int     // key/value heads; Heads is a multiple of it (GQA)
	HeadDim  int     // d, also the rotary dimension; even
	RopeBase float64 // RoPE frequency base, e.g. 10000
	NeoX     bool    // split-half RoPE pairs instead of GGUF 'llama' adjacent pairs
}

// RefAttention is the float64 reference of one query's attention over a FreqKV cache.
//
// query (Heads*HeadDim values, before RoPE) belongs to the token at cache row pos and is
// rotated to position pos. keys and values are cache rows (KVHeads*HeadDim values each);
// keys are stored before RoPE and row i is rotated to position i here, as the reference
// does. The query attends to rows 0..pos only, which makes a group of tokens appended
// together causal within itself; rows past pos may be present and are ignored. Query head
// h reads KV head h / (Heads/KVHeads). Scores are scaled by 1/sqrt(HeadDim). The result
// has Heads*HeadDim values.
func RefAttention(query []float64, keys, values [][]float64, pos int, p AttentionParams) ([]float64, error) {
	if p.Heads < 1 || p.KVHeads < 1 || p.Heads%p.KVHeads != 0 {
		return nil, fmt.Errorf("freqkv: attention with %d heads and %d kv heads; kv heads must be positive and divide heads",
			p.Heads, p.KVHeads)
	}
	d := p.HeadDim
	if len(query) != p.Heads*d {
		return nil, fmt.Errorf("freqkv: attention query has %d values, want %d heads x %d", len(query), p.Heads, d)
	}
	if len(keys) != len(values) {
		return nil, fmt.Errorf("freqkv: attention over %d key rows but %d value rows", len(keys), len(values))
	}
	if pos < 0 || pos >= len(keys) {
		return nil, fmt.Errorf("freqkv: attention query at row %d outside the cache's %d rows", pos, len(keys))
	}
	kvWidth := p.KVHeads * d
	for row := 0; row <= pos; row++ {
		if len(keys[row]) != kvWidth || len(values[row]) != kvWidth {
			return nil, fmt.Errorf("freqkv: attention cache row %d has %d key and %d value channels, want %d",
				row, len(keys[row]), len(values[row]), kvWidth)
		}
	}

	rotatedQuery := append([]float64(nil), query...)
	if err := Rope(rotatedQuery, pos, d, p.RopeBase, p.NeoX); err != nil {
		return nil, fmt.Errorf("freqkv: attention query: %w", err)
	}
	rotatedKeys := make([][]float64, pos+1)
	for row := range rotatedKeys {
		rotatedKeys[row] = append([]float64(nil), keys[row]...)
		if err := Rope(rotatedKeys[row], row, d, p.RopeBase, p.NeoX); err != nil {
			return nil, fmt.Errorf("freqkv: attention key row %d: %w", row, err)
		}
	}

	out := make([]float64, p.Heads*d)
	scores := make([]float64, pos+1)
	scale := 1 / math.Sqrt(float64(d))
	group := p.Heads / p.KVHeads
	for head := range p.Heads {
		q := rotatedQuery[head*d : (head+1)*d]
		kvOffset := (head / group) * d
		maxScore := math.Inf(-1)
		for row, key := range rotatedKeys {
			var dot float64
			for i, qi := range q {
				dot += qi * key[kvOffset+i]
			}
			scores[row] = dot * scale
			maxScore = math.Max(maxScore, scores[row])
		}
		var total float64
		for row := range scores {
			scores[row] = math.Exp(scores[row] - maxScore) // shifted for a stable softmax
			total += scores[row]
		}
		o := out[head*d : (head+1)*d]
		for row, weight := range scores {
			for i, v := range values[row][kvOffset : kvOffset+d] {
				o[i] += weight / total * v
			}
		}
	}
	return out, nil
}
