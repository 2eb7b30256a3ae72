package cpuref

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/kvcache"
)

// Session is one sequence being decoded: a KV cache per layer under one policy.
type Session struct {
	m      *Model
	spec   kvcache.Spec
	tokens int // tokens seen: the logical row of the next one
	caches []layerCache
}

// NewSession starts a sequence whose KV cache follows spec, the same Spec the GPU cache is
// made from. The reference keeps its own implementation of each policy (it must share no
// code with what it checks) and computes in float64 whatever spec.Storage says.
func (m *Model) NewSession(spec kvcache.Spec) (*Session, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("cpuref: %w", err)
	}
	if m.HP.SlidingWindow > 0 && m.HP.WindowPattern == 0 && spec.Kind != kvcache.Full {
		return nil, fmt.Errorf("cpuref: a model with a sliding window of %d runs under the full policy (masked to the window), not %v", m.HP.SlidingWindow, spec.Kind)
	}
	s := &Session{m: m, spec: spec, caches: make([]layerCache, m.HP.Layers)}
	for i := range s.caches {
		if m.HP.WindowPattern > 0 && m.HP.LocalLayer(i) {
			// Gemma 2's local layers: a full cache masked to the window at absolute
			// positions, whatever the global layers' policy.
			s.caches[i] = &fullCache{window: m.HP.SlidingWindow}
			continue
		}
		window := m.HP.SlidingWindow
		if m.HP.WindowPattern > 0 {
			window = 0 // global layers
		}
		switch spec.Kind {
		case kvcache.Full:
			s.caches[i] = &fullCache{window: window}
		case kvcache.Window:
			s.caches[i] = &windowCache{size: spec.Size, sink: spec.Sink, start: spec.Sink}
		case kvcache.FreqKV:
			if err := spec.CheckLayers(m.HP.Layers); err != nil {
				return nil, fmt.Errorf("cpuref: %w", err)
			}
			ref, err := freqkv.NewRefCache(spec.LayerFreqKV(i), m.HP.KVDim())
			if err != nil {
				return nil, fmt.Errorf("cpuref: %w", err)
			}
			s.caches[i] = &freqkvCache{ref: ref}
		case kvcache.HeavyHitter:
			s.caches[i] = newHeavyCache(spec.FreqKV(), m.HP.KVHeads, m.HP.HeadDim())
		default:
			return nil, fmt.Errorf("cpuref: no reference for the %v cache policy", spec.Kind)
		}
	}
	return s, nil
}

// Tokens is the number of tokens the session has seen.
func (s *Session) Tokens() int { return s.tokens }

// Rows returns copies of the rows layer's cache holds, in cache order, keys before RoPE: the
// rows the latest token attended to (full: every token; window: the sinks, then the latest
// rows; freqkv: the RefCache's rows).
func (s *Session) Rows(layer int) (keys, values [][]float64, err error) {
	if layer < 0 || layer >= len(s.caches) {
		return nil, nil, fmt.Errorf("cpuref: layer %d outside [0, %d)", layer, len(s.caches))
	}
	k, v := s.caches[layer].held()
	return copyRows(k), copyRows(v), nil
}

func copyRows(rows [][]float64) [][]float64 {
	out := make([][]float64, len(rows))
	for i, r := range rows {
		out[i] = append([]float64(nil), r...)
	}
	return out
}

// Forward runs one token and returns its logits (vocab,).
func (s *Session) Forward(token int) ([]float64, error) {
	logits, err := s.ForwardGroup([]int{token})
	if err != nil {
		return nil, err
	}
	return logits[0], nil
}

// ForwardGroup runs consecutive tokens as one group, layer by layer, and returns the logits
// of each. Under freqkv the group follows the FreqKV plan: the tokens that fill the cache
// attend causally, then each following run of L-m tokens attends to the compressed cache and
// causally within itself. Any grouping gives the token-by-token result. On error the session
// is unchanged.
func (s *Session) ForwardGroup(tokens []int) ([][]float64, error) {
	hp := s.m.HP
	for _, t := range tokens {
		if t < 0 || t >= hp.Vocab {
			return nil, fmt.Errorf("cpuref: token %d outside the vocabulary [0, %d)", t, hp.Vocab)
		}
	}
	if s.spec.Kind == kvcache.Full && s.tokens+len(tokens) > s.spec.Size {
		return nil, fmt.Errorf("cpuref: %w: %d tokens seen, %d more do not fit in %d rows",
			kvcache.ErrContextFull, s.tokens, len(tokens), s.spec.Size)
	}
	if len(tokens) == 0 {
		return nil, nil
	}

	// x: the residual stream of each token (dim,)
	x := make([][]float64, len(tokens))
	for i, t := range tokens {
		x[i] = append([]float64(nil), s.m.TokenEmbedding[t*hp.Dim:(t+1)*hp.Dim]...)
		if hp.EmbedScale {
			for j := range x[i] {
				x[i][j] *= math.Sqrt(float64(hp.Dim))
			}
		}
	}
	for l, w := range s.m.Layers {
		// attention: rmsnorm, Q/K/V, cache the keys (before RoPE) and values, attend
		q := make([][]float64, len(x))
		k := make([][]float64, len(x))
		v := make([][]float64, len(x))
		for i := range x {
			xb := rmsnorm(x[i], w.AttnNorm, hp.RMSEps)
			q[i] = headNorm(matmul(w.WQ, xb, w.BQ), w.QNorm, hp.HeadDim(), hp.RMSEps)
			k[i] = headNorm(matmul(w.WK, xb, w.BK), w.KNorm, hp.HeadDim(), hp.RMSEps)
			v[i] = matmul(w.WV, xb, w.BV)
		}
		views, err := s.caches[l].put(s.tokens, k, v)
		if err != nil {
			return nil, err // not reached: the caches accept what the checks above let through
		}
		for i := range x {
			mass, _ := s.caches[l].(*heavyCache)
			o := matmul(w.WO, s.attention(q[i], views[i], mass, l), nil)
			if hp.PostNorms {
				o = rmsnorm(o, w.PostAttn, hp.RMSEps)
			}
			add(x[i], o)
		}
		// feed-forward: rmsnorm, silu(gate) * up (gemma2: gelu), down
		for i := range x {
			xb := rmsnorm(x[i], w.FFNNorm, hp.RMSEps)
			gate, up := matmul(w.WGate, xb, nil), matmul(w.WUp, xb, nil)
			var hidden []float64
			if hp.GELU {
				hidden = geglu(gate, up)
			} else {
				hidden = swiglu(gate, up)
			}
			o := matmul(w.WDown, hidden, nil)
			if hp.PostNorms {
				o = rmsnorm(o, w.PostFFN, hp.RMSEps)
			}
			add(x[i], o)
		}
	}
	logits := make([][]float64, len(x))
	for i := range x {
		logits[i] = matmul(s.m.Output, rmsnorm(x[i], s.m.OutputNorm, hp.RMSEps), nil)
		softcap(logits[i], hp.FinalSoftcap)
	}
	s.tokens += len(tokens)
	return logits, nil
}

// attention of one query q (heads*head_dim,) over the rows of v, -> (heads*head_dim,).
// The query and every key are rotated to their positions; query head h reads kv head
// h / (heads/kv_heads); scores are scaled by 1/sqrt(head_dim) (or the model's query
// scale), then softcapped where the model says (gemma2).
// With mass, each head's probabilities are added to the rows' attention mass (h2o).
func (s *Session) attention(q []float64, v view, mass *heavyCache, layer int) []float64 {
	hp := s.m.HP
	hd := hp.HeadDim()
	rp := newRopeParams(s.m, s.spec.Size)
	if hp.LocalRopeBase > 0 && hp.LocalLayer(layer) {
		// gemma3's local layers: their own base, unscaled
		rp.base, rp.scale, rp.yarn, rp.factors = hp.LocalRopeBase, 1, false, nil
	}
	q = rope(q, v.queryPos, rp)
	keys := make([][]float64, len(v.keys))
	for j, key := range v.keys {
		keys[j] = rope(key, v.keyPos[j], rp)
	}

	out := make([]float64, len(q))
	scores := make([]float64, len(keys))
	scale := hp.AttentionScale()
	kvMul := hp.Heads / hp.KVHeads // query heads per kv head (GQA)
	for h := range hp.Heads {
		qh := q[h*hd : (h+1)*hd]
		kvOff := (h / kvMul) * hd
		for j, key := range keys {
			var dot float64
			for i, qi := range qh {
				dot += qi * key[kvOff+i]
			}
			scores[j] = dot * scale
		}
		softcap(scores, hp.AttnSoftcap)
		softmax(scores)
		if mass != nil {
			mass.addMass(h/kvMul, scores)
		}
		oh := out[h*hd : (h+1)*hd]
		for j, value := range v.values {
			for i := range oh {
				oh[i] += scores[j] * value[kvOff+i]
			}
		}
	}
	return out
}
