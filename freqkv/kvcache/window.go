package kvcache

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

// window is a StreamingLLM cache: sink rows pinned at the start and the most recent
// rows in a ring behind them. Every query sees at most size rows, itself included: the
// sinks and the last size-sink rows up to its own. Positions are indices within what a
// query sees (sinks 0..sink-1, then the window), so they stay below size forever.
type window struct {
	s                    *store
	size, sink, maxChunk int
	rows                 int // logical rows stored so far
	c                    committer
}

// NewWindow returns a StreamingLLM cache: each query sees the sink first tokens and the
// most recent tokens, size rows in all (itself included; Window = size - sink). The ring
// holds Cap = size + maxChunk - 1 rows so that a chunk of up to maxChunk tokens never
// overwrites a row its own earlier queries still see; Next allows at most maxChunk.
func NewWindow(dev *engine.Device, g Geometry, size, sink, maxChunk int) (Policy, error) {
	switch {
	case sink < 0:
		return nil, fmt.Errorf("kvcache: window sink %d is negative; use --sink 0 or more", sink)
	case size <= sink:
		return nil, fmt.Errorf("kvcache: a window of %d rows leaves none after its %d sinks; raise --window or lower --sink", size, sink)
	case maxChunk < 1:
		return nil, fmt.Errorf("kvcache: window chunk size %d must be positive", maxChunk)
	}
	s, err := newStore(dev, g, size+maxChunk-1, "window")
	if err != nil {
		return nil, err
	}
	return &window{s: s, size: size, sink: sink, maxChunk: maxChunk}, nil
}

func (w *window) Name() string { return "window" }

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
	return View{Rows: w.rows, Sink: w.sink, Window: w.size - w.sink, Cap: w.s.cap}
}

func (w *window) K(layer int) *engine.Tensor { return w.s.k(layer) }
func (w *window) V(layer int) *engine.Tensor { return w.s.v(layer) }
func (w *window) MaxPosition() int           { return w.size }

// Stats reports as Rows what the next query sees besides itself.
func (w *window) Stats() Stats {
	return Stats{Rows: min(w.rows, w.size-1), Tokens: w.c.tokens, Bytes: w.s.bytes}
}

func (w *window) Reset() {
	w.rows = 0
	w.c = committer{}
}

func (w *window) Release() { w.s.release() }
