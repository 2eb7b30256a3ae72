package llama

import "github.com/freqkv/freqkv/kvcache"

// newCache makes the context's cache: one policy for every layer, or, where
// only some layers have the sliding window (Gemma 2's even layers), a window
// cache for those and the chosen policy for the others.
func (m *Model) newCache(spec kvcache.Spec, maxChunk int) (kvcache.Policy, kvcache.Spec, error) {
	local := m.slidingWindow(spec)
	if m.H.WindowPattern == 0 || local.Equal(spec) {
		c, err := kvcache.New(m.dev, m.ops, m.CacheGeometry(), local, maxChunk)
		return c, local, err
	}
	isLocal := make([]bool, m.H.Layers)
	for i := range isLocal {
		isLocal[i] = m.H.LocalLayer(i)
	}
	c, err := kvcache.NewLayered(m.dev, m.ops, m.CacheGeometry(), spec, local, isLocal, maxChunk)
	return c, spec, err
}

// slidingWindow adapts a cache spec to a model's layers that attend to a
// sliding window of W tokens (every layer of Mistral, the local layers of
// Gemma 2): such layers keep a window cache of
// W rows without sinks, whatever the policy asked, since the model never
// sees past its window (a window cache renumbers positions, which leaves
// every query-key distance, all RoPE depends on, as it was). A full cache no
// longer than W is exact as it is.
func (m *Model) slidingWindow(spec kvcache.Spec) kvcache.Spec {
	w := m.H.SlidingWindow
	if w == 0 || spec.Kind == kvcache.Full && spec.Size <= w {
		return spec
	}
	return kvcache.Spec{Kind: kvcache.Window, Size: w, Storage: spec.Storage, ValueStorage: spec.ValueStorage}
}
