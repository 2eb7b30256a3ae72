package kvcache

import (
	"github.com/freqkv/freqkv/engine"
)

// window is a StreamingLLM cache: sink rows pinned at the start and the most recent
// rows in a ring behind them. Every query sees at most Size rows, itself included: the
// sinks and the last Size-Sink rows up to its own. Positions are indices within what a
// query sees (sinks 0..Sink-1, then the window), so they stay below Size forever.
//
// The ring holds Cap = Size + maxChunk - 1 rows so that a chunk of up to maxChunk tokens
// never overwrites a row its own earlier queries still see; Next allows at most maxChunk.
type window struct {
	s        *store
	maxChunk int
	rows     int // logical rows stored so far
	c        committer
}

func newWindow(dev *engine.Device, g Geometry, spec Spec, maxChunk int) (Policy, error) {
	s, err := newStore(dev, g, spec, maxChunk-1)
	if err != nil {
		return nil, err
	}
	return &window{s: s, maxChunk: maxChunk}, nil
}

func (w *window) Spec() Spec { return w.s.spec }
func (w *window) Room() int  { return Unbounded }

func (w *window) Next(_ *engine.Recorder, n int) (int, error) {
	if err := checkNext(n); err != nil {
		return 0, err
	}
	w.c.allowed = min(n, w.maxChunk)
	return w.c.allowed, nil
}

func (w *window) Commit(n int) {
	w.c.commit(n)
	w.rows += n
}

func (w *window) View() View {
	sp := w.s.spec
	return View{Rows: w.rows, Sink: sp.Sink, Window: sp.Size - sp.Sink, Cap: w.s.cap}
}

func (w *window) K(layer int) *engine.Tensor { return w.s.k(layer) }
func (w *window) V(layer int) *engine.Tensor { return w.s.v(layer) }
func (w *window) MaxPosition() int           { return w.s.spec.Size }

// Stats reports as Rows what the next query sees besides itself.
func (w *window) Stats() Stats {
	return Stats{Rows: min(w.rows, w.s.spec.Size-1), Tokens: w.c.tokens, Bytes: w.s.bytes}
}

func (w *window) Reset() {
	w.rows = 0
	w.c = committer{}
}

func (w *window) Release()           { w.s.release() }
func (w *window) LayerView(int) View { return w.View() }
