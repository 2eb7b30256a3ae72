package llama

// slidingWindow adapts the cache options to a model whose every layer
// attends to a sliding window of W tokens (Mistral): such layers keep a
// window cache of W rows without sinks, whatever the policy asked, since
// the model never sees past its window (a window cache renumbers
// positions, which leaves every query-key distance, all RoPE depends on,
// as it was). A full cache no longer than W is exact as it is.
func (m *Model) slidingWindow(opts CacheOptions) CacheOptions {
	w := m.H.SlidingWindow
	if w == 0 {
		return opts
	}
	if opts.Policy == "full" {
		n := opts.Context
		if n == 0 {
			n = m.H.ContextLength
		}
		if n <= w {
			return opts
		}
	}
	opts.Policy = "window"
	opts.FreqKV.CacheSize, opts.FreqKV.Sink = w, 0
	return opts
}
