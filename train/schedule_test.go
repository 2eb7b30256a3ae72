package train

import (
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/stretchr/testify/require"
)

func TestPlanFreqKV(t *testing.T) {
	c := kvcache.Spec{Kind: kvcache.FreqKV, Size: 512, Sink: 4, Ratio: 0.5, Storage: engine.F32}
	s, err := Plan(c, 2048)
	require.NoError(t, err)
	require.Equal(t, Segment{Start: 0, Tokens: 512, Compress: true}, s.Segments[0])
	// L = 508, m = 254: groups of 254 tokens behind 258 rows
	require.Equal(t, Segment{Start: 512, Tokens: 254, Rows: 258, Compress: true}, s.Segments[1])
	last := s.Segments[len(s.Segments)-1]
	require.Equal(t, 2048, last.Start+last.Tokens)
	require.False(t, last.Compress)
	require.Equal(t, len(s.Segments)-1, s.Compressions())
	require.Equal(t, 512, s.Cap)
	for i := 1; i < len(s.Segments); i++ {
		require.Equal(t, s.Segments[i-1].Start+s.Segments[i-1].Tokens, s.Segments[i].Start)
		require.LessOrEqual(t, s.Segments[i].Rows+s.Segments[i].Tokens, 512)
	}
	// a sequence within the cache is one causal segment
	s, err = Plan(c, 300)
	require.NoError(t, err)
	require.Equal(t, []Segment{{Start: 0, Tokens: 300}}, s.Segments)
}

func TestPlanFullAndWindow(t *testing.T) {
	s, err := Plan(kvcache.Spec{Kind: kvcache.Full, Size: 100, Storage: engine.F32}, 100)
	require.NoError(t, err)
	require.Equal(t, Schedule{Segments: []Segment{{Tokens: 100}}, Cap: 100}, s)
	_, err = Plan(kvcache.Spec{Kind: kvcache.Full, Size: 99, Storage: engine.F32}, 100)
	require.ErrorContains(t, err, "cannot hold a training sequence of 100")
	s, err = Plan(kvcache.Spec{Kind: kvcache.Window, Size: 32, Sink: 4, Storage: engine.F32}, 100)
	require.NoError(t, err)
	require.Equal(t, 28, s.Window)
	require.Equal(t, 4, s.Sink)
	_, err = Plan(kvcache.Spec{Kind: kvcache.Window, Size: 4, Sink: 4, Storage: engine.F32}, 100)
	require.Error(t, err)
	_, err = Plan(kvcache.Spec{Kind: kvcache.Window, Size: 32, Sink: 4, Storage: engine.F16}, 100)
	require.ErrorContains(t, err, "f32")
}

func TestDataTextIsSeededAndCoversEpochs(t *testing.T) {
	stream := make([]int32, 1001)
	for i := range stream {
		stream[i] = int32(i)
	}
	a, err := NewData(stream, 100, Text, 0, 5)
	require.NoError(t, err)
	b, _ := NewData(stream, 100, Text, 0, 5)
	seen := map[int32]bool{}
	for range 10 {
		x, y := a.Next(), b.Next()
		require.Equal(t, x, y)
		require.Len(t, x, 101)
		require.Zero(t, x[0]%100)
		seen[x[0]] = true
	}
	require.Len(t, seen, 10, "one epoch visits every window once")
	c, _ := NewData(stream, 100, Text, 0, 6)
	require.NotEqual(t, a.Next(), c.Next())
}

func TestDataRepeat(t *testing.T) {
	stream := make([]int32, 5000)
	for i := range stream {
		stream[i] = int32(i)
	}
	d, err := NewData(stream, 2048, Repeat, 512, 1)
	require.NoError(t, err)
	p, g := d.Passage(), d.Gap()
	require.Greater(t, g, 512)
	seq := d.Next()
	require.Len(t, seq, 2049)
	require.Equal(t, seq[:p], seq[p+g:2*p+g])
	_, err = NewData(stream, 600, Repeat, 600, 1)
	require.ErrorContains(t, err, "no room")
}

func TestDataTooShort(t *testing.T) {
	_, err := NewData(make([]int32, 100), 100, Text, 0, 1)
	require.ErrorContains(t, err, "fewer than the 101")
}
