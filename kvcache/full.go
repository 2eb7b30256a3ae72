package kvcache

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

// full keeps every token up to Spec.Size; token i is cache row i and has position i.
type full struct {
	s    *store
	rows int
	c    committer
}

func newFull(dev *engine.Device, g Geometry, spec Spec) (Policy, error) {
	s, err := newStore(dev, g, spec, 0)
	if err != nil {
		return nil, err
	}
	return &full{s: s}, nil
}

func (f *full) Spec() Spec { return f.s.spec }
func (f *full) Room() int  { return f.s.spec.Size - f.rows }

func (f *full) Next(_ *engine.Recorder, n int) (int, error) {
	if err := checkNext(n); err != nil {
		return 0, err
	}
	if f.rows == f.s.spec.Size {
		return 0, fmt.Errorf("kvcache: %w: the full cache holds all %d tokens it has room for; a larger size, or a window or freqkv cache, keeps going",
			ErrContextFull, f.s.spec.Size)
	}
	f.c.allowed = min(n, f.Room())
	return f.c.allowed, nil
}

func (f *full) Commit(n int) {
	f.c.commit(n)
	f.rows += n
}

func (f *full) View() View                 { return View{Rows: f.rows, Cap: f.s.cap} }
func (f *full) K(layer int) *engine.Tensor { return f.s.k(layer) }
func (f *full) V(layer int) *engine.Tensor { return f.s.v(layer) }
func (f *full) MaxPosition() int           { return f.s.cap }

func (f *full) Stats() Stats {
	return Stats{Rows: f.rows, Tokens: f.c.tokens, Bytes: f.s.bytes}
}

func (f *full) Reset() {
	f.rows = 0
	f.c = committer{}
}

func (f *full) Release()           { f.s.release() }
func (f *full) LayerView(int) View { return f.View() }
