package kvcache

import (
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/stretchr/testify/require"
)

// TestLayered: local layers get the window's tensors and view, global ones
// the chosen policy's; a step takes what both allow; h2o and per-layer
// geometry are refused with a SpecError.
func TestLayered(t *testing.T) {
	dev := gputest.Device(t)
	g := Geometry{Layers: 3, KVHeads: 1, HeadDim: 4}
	isLocal := []bool{true, false, true}
	global := Spec{Kind: FreqKV, Size: 16, Sink: 2, Recent: 2, Ratio: 0.5, Storage: engine.F32}
	local := Spec{Kind: Window, Size: 6, Storage: engine.F32}
	p, err := NewLayered(dev, nil, g, global, local, isLocal, 4)
	require.NoError(t, err)
	defer p.Release()
	require.True(t, p.Spec().Equal(global))
	require.Equal(t, 6, p.LayerView(0).Window)
	require.Zero(t, p.LayerView(1).Window)
	require.Equal(t, 16, p.LayerView(1).Cap)
	require.NotSame(t, p.K(0), p.K(2))
	require.Equal(t, 16, p.MaxPosition())
	rows := 0
	for rows < 40 {
		rec := dev.NewRecorder()
		n, err := p.Next(rec, 8)
		require.NoError(t, err)
		require.LessOrEqual(t, n, 4, "the window's chunk bound")
		p.Commit(n)
		require.NoError(t, rec.SubmitAndWait())
		rows += n
	}
	require.Positive(t, p.Stats().Compressions)
	require.Equal(t, rows, p.LayerView(0).Rows)

	for _, bad := range []Spec{{Kind: HeavyHitter, Size: 16, Sink: 2, Recent: 2, Ratio: 0.5, Storage: engine.F32},
		{Kind: FreqKV, Size: 16, Sink: 2, Recent: 2, Ratios: []float64{0.5, 0.5, 0.5}, Storage: engine.F32}} {
		_, err := NewLayered(dev, nil, g, bad, local, isLocal, 4)
		var se *SpecError
		require.ErrorAs(t, err, &se)
	}
}
