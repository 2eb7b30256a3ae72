package train

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
)

// Segment is one attention call of the training forward: Tokens queries at
// sequence positions [Start, Start+Tokens), stored at cache rows
// [Rows, Rows+Tokens) behind Rows rows already there.
type Segment struct {
	Start, Tokens int
	Rows          int  // cache rows before the segment's own
	Compress      bool // the cache (Rows+Tokens = N rows) is compressed after the segment
}

// Schedule is how a sequence of T tokens runs under a cache policy.
type Schedule struct {
	Segments []Segment
	Cap      int // physical cache rows (N for FreqKV, T otherwise)
	Window   int // attention window after the sinks (Window policy), else 0
	Sink     int // pinned rows of the window (Window policy), else 0
}

// Plan splits a sequence of t tokens into the attention segments of the
// cache policy spec (kvcache.Spec: its Size is N, its Sink S, ...):
//
//   - full: one causal segment of t tokens; positions 0..t-1, so t must not
//     exceed the spec's size (the context a full cache holds);
//   - window: one segment of t tokens, each query seeing the sinks and the
//     most recent Size-Sink rows itself included (StreamingLLM in the loop);
//   - freqkv: the grouped forward of docs/freqkv.md: the first N tokens causally,
//     then groups of L-m tokens over [sinks, compressed, recent] rows plus
//     their own, the cache compressed between groups.
//
// Training keeps keys and values in f32: the spec's storage must be f32.
func Plan(spec kvcache.Spec, t int) (Schedule, error) {
	if t < 1 {
		return Schedule{}, fmt.Errorf("a training sequence needs at least one token, got %d", t)
	}
	if err := spec.Validate(); err != nil {
		return Schedule{}, err
	}
	if err := spec.CheckMethodOnly(); err != nil {
		return Schedule{}, err
	}
	if spec.Storage != engine.F32 {
		return Schedule{}, &kvcache.SpecError{Params: []kvcache.Param{kvcache.ParamStorage},
			Msg: fmt.Sprintf("training keeps keys and values in f32, not %s", spec.Storage)}
	}
	switch spec.Kind {
	case kvcache.Full:
		if spec.Size < t {
			return Schedule{}, &kvcache.SpecError{Params: []kvcache.Param{kvcache.ParamSize},
				Msg: fmt.Sprintf("a full cache of %d tokens cannot hold a training sequence of %d; the size must be at least the sequence length", spec.Size, t)}
		}
		return Schedule{Segments: []Segment{{Start: 0, Tokens: t}}, Cap: t}, nil
	case kvcache.Window:
		return Schedule{Segments: []Segment{{Start: 0, Tokens: t}}, Cap: t,
			Window: spec.Size - spec.Sink, Sink: spec.Sink}, nil
	}
	cfg := spec.FreqKV()
	n := cfg.CacheSize
	first := min(t, n)
	s := Schedule{Cap: n, Segments: []Segment{{Start: 0, Tokens: first}}}
	for start := first; start < t; {
		// the cache is full: compress it, then the next group fills it again
		s.Segments[len(s.Segments)-1].Compress = true
		rows := cfg.RowsAfterCompression()
		g := min(n-rows, t-start)
		s.Segments = append(s.Segments, Segment{Start: start, Tokens: g, Rows: rows})
		start += g
	}
	return s, nil
}

// Compressions is the number of compressions a schedule runs.
func (s Schedule) Compressions() int {
	n := 0
	for _, g := range s.Segments {
		if g.Compress {
			n++
		}
	}
	return n
}
