// Package freqkv holds the geometry, the trigger rule and the float64 references of
// FreqKV, the frequency-domain KV-cache compression the engine runs (see docs/freqkv.md).
//
// A layer's cache holds at most N = Config.CacheSize rows. When it is full and a token
// needs a row, the span of L = N - S - R rows after the S sink rows is resampled to
// m = floor(L*g) rows, every channel independently: orthonormal DCT-II of length L,
// keep the m lowest frequencies, orthonormal DCT-III of length m, scale by sqrt(m/L).
// The R most recent rows move up behind them. Old context is compressed again and
// again and fades into ever lower resolution; positions, which are cache rows, never
// exceed N-1.
//
// Config.Plan is the single trigger rule, shared by token-by-token decoding and grouped
// prefill, so both paths compress at the same cache states. Compressor (Makhoul's DCT
// over radix-2 and Bluestein FFTs, O(L log L) for any L), RefCache, Rope and
// RefAttention are float64 references: the oracles the WGSL compressor and attention
// are tested against, not fast paths.
package freqkv
