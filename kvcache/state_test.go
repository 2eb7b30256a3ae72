package kvcache

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/shaders"
	"github.com/stretchr/testify/require"
)

// TestStateRoundTrip: a state saved from one cache and loaded into a fresh
// one of the same spec gives back the same bytes and counters; a cache of
// another spec or geometry refuses it.
func TestStateRoundTrip(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	g := Geometry{Layers: 2, KVHeads: 2, HeadDim: 4}
	spec := DefaultSpec(FreqKV, 16, engine.F32)
	a, err := New(dev, ops, g, spec, 1)
	require.NoError(t, err)
	defer a.Release()
	r := rand.New(rand.NewPCG(1, 2))
	for l := range g.Layers {
		for _, m := range []*engine.Tensor{a.K(l), a.V(l)} {
			vals := make([]float32, m.Rows*m.Cols)
			for i := range vals {
				vals[i] = float32(r.Float64()*2 - 1)
			}
			require.NoError(t, m.UploadF32(vals))
		}
	}
	fa := a.(*freqKV)
	fa.rows, fa.compressions, fa.c.tokens = 11, 3, 40
	st, err := SaveState(a)
	require.NoError(t, err)
	require.Len(t, st.Matrices, 2*g.Layers)

	// The bookkeeping survives JSON (the chat file keeps it as metadata).
	meta, err := json.Marshal(st)
	require.NoError(t, err)
	var back State
	require.NoError(t, json.Unmarshal(meta, &back))
	require.Equal(t, st.Spec, back.Spec)

	b, err := New(dev, ops, g, spec, 1)
	require.NoError(t, err)
	defer b.Release()
	require.NoError(t, LoadState(b, st))
	again, err := SaveState(b)
	require.NoError(t, err)
	require.Equal(t, st, again)
	require.Equal(t, 3, b.Stats().Compressions)

	other, err := New(dev, ops, g, DefaultSpec(FreqKV, 24, engine.F32), 1)
	require.NoError(t, err)
	defer other.Release()
	require.ErrorContains(t, LoadState(other, st), "saved cache")
	g2 := Geometry{Layers: 2, KVHeads: 1, HeadDim: 8}
	moved, err := New(dev, ops, g2, spec, 1)
	require.NoError(t, err)
	defer moved.Release()
	require.ErrorContains(t, LoadState(moved, st), "geometry")
}
