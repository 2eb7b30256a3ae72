package kvcache

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

// layered is the cache of a model whose sliding-window layers alternate with global ones
// (Gemma 2): the local layers keep their own cache (a window of the model's width), the
// global layers the policy the user chose. A step takes what both allow; both commit it.
type layered struct {
	global, local Policy
	isLocal       []bool
	index         []int // layer l is layer index[l] of its part
}

// NewLayered returns a cache whose layers l with isLocal[l] follow local and the others
// global (both specs for the same geometry g, with the layer counts split between them).
// The global policy cannot be a heavy-hitter cache (its attention mass is kept per policy)
// nor have per-layer geometry.
func NewLayered(dev *engine.Device, ops *shaders.Ops, g Geometry, global, local Spec, isLocal []bool, maxChunk int) (Policy, error) {
	if len(isLocal) != g.Layers {
		return nil, fmt.Errorf("kvcache: %d layer kinds for %d layers", len(isLocal), g.Layers)
	}
	if global.Kind == HeavyHitter || local.Kind == HeavyHitter {
		return nil, &SpecError{Params: []Param{ParamKind}, Msg: "the h2o policy is not available for models with sliding-window layers; use full, window or freqkv"}
	}
	if global.PerLayer() || local.PerLayer() {
		return nil, &SpecError{Params: []Param{ParamRatios}, Msg: "per-layer geometry is not available for models with sliding-window layers"}
	}
	l := &layered{isLocal: isLocal, index: make([]int, g.Layers)}
	var nLocal, nGlobal int
	for i, loc := range isLocal {
		if loc {
			l.index[i] = nLocal
			nLocal++
		} else {
			l.index[i] = nGlobal
			nGlobal++
		}
	}
	if nLocal == 0 || nGlobal == 0 {
		return nil, fmt.Errorf("kvcache: a layered cache needs local and global layers, got %d and %d", nLocal, nGlobal)
	}
	gg, lg := g, g
	gg.Layers, lg.Layers = nGlobal, nLocal
	var err error
	if l.global, err = New(dev, ops, gg, global, maxChunk); err != nil {
		return nil, err
	}
	if l.local, err = New(dev, ops, lg, local, maxChunk); err != nil {
		l.global.Release()
		return nil, fmt.Errorf("kvcache: the sliding-window layers' cache: %w", err)
	}
	return l, nil
}

func (l *layered) part(layer int) (Policy, int) {
	if layer < 0 || layer >= len(l.isLocal) {
		panic(fmt.Sprintf("kvcache: layer %d of a %d-layer cache", layer, len(l.isLocal)))
	}
	if l.isLocal[layer] {
		return l.local, l.index[layer]
	}
	return l.global, l.index[layer]
}

// Spec is the global layers' spec, what the user chose.
func (l *layered) Spec() Spec { return l.global.Spec() }
func (l *layered) Room() int  { return min(l.global.Room(), l.local.Room()) }

func (l *layered) Next(rec *engine.Recorder, n int) (int, error) {
	a, err := l.global.Next(rec, n)
	if err != nil {
		return 0, err
	}
	return l.local.Next(rec, a) // at most a
}

func (l *layered) Commit(n int) {
	l.global.Commit(n)
	l.local.Commit(n)
}

// View is the global layers' view; LayerView tells each layer's.
func (l *layered) View() View { return l.global.View() }

func (l *layered) LayerView(layer int) View {
	p, i := l.part(layer)
	return p.LayerView(i)
}

func (l *layered) K(layer int) *engine.Tensor {
	p, i := l.part(layer)
	return p.K(i)
}

func (l *layered) V(layer int) *engine.Tensor {
	p, i := l.part(layer)
	return p.V(i)
}

func (l *layered) MaxPosition() int { return max(l.global.MaxPosition(), l.local.MaxPosition()) }

// Stats are the global layers' (rows, compressions, tokens), with the bytes of both parts.
func (l *layered) Stats() Stats {
	s := l.global.Stats()
	s.Bytes += l.local.Stats().Bytes
	return s
}

func (l *layered) Reset() {
	l.global.Reset()
	l.local.Reset()
}

func (l *layered) Release() {
	l.global.Release()
	l.local.Release()
}
