package kvcache

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

// full keeps every token up to the context size; token i is cache row i and has
// position i.
type full struct {
	s       *store
	context int
	rows    int
	c       committer
}

// NewFull returns a cache of context rows per layer that keeps every token: Cap =
// context, positions are token indices, and Next fails once it is full.
func NewFull(dev *engine.Device, g Geometry, context int) (Policy, error) {
	if context < 1 {
		return nil, fmt.Errorf("kvcache: context %d must be positive; raise --context", context)
	}
	s, err := newStore(dev, g, context, "full")
	if err != nil {
		return nil, err
	}
	return &full{s: s, context: context}, nil
}

func (f *full) Name() string { return "full" }

func (f *full) Next(_ *engine.Recorder, n int) (int, error) {
	if err := checkNext(n); err != nil {
		return 0, err
	}
	if f.rows == f.context {
		return 0, fmt.Errorf("kvcache: the full cache holds all %d tokens of its context; raise --context, or use --kv window or --kv freqkv to keep going in fixed memory", f.context)
	}
	f.c.allowed = min(n, f.context-f.rows)
	return f.c.allowed, nil
}

func (f *full) Commit(n int) {
	f.c.commit(n)
	f.rows += n
}

func (f *full) View() View                 { return View{Rows: f.rows, Cap: f.context} }
func (f *full) K(layer int) *engine.Tensor { return f.s.k(layer) }
func (f *full) V(layer int) *engine.Tensor { return f.s.v(layer) }
func (f *full) MaxPosition() int           { return f.context }

func (f *full) Stats() Stats {
	return Stats{Rows: f.rows, Tokens: f.c.tokens, Bytes: f.s.bytes}
}

func (f *full) Reset() {
	f.rows = 0
	f.c = committer{}
}

func (f *full) Release() { f.s.release() }
