package llama

import "github.com/freqkv/freqkv/kvcache"

// slidingWindow adapts a cache spec to a model whose every layer attends to
// a sliding window of W tokens (Mistral): such layers keep a window cache of
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
