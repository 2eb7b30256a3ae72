// Package kvcache holds the per-layer key and value caches on the GPU and the policies
// that decide which rows they keep: a full cache (every token, up to the context size),
// a StreamingLLM window (sink rows plus the most recent rows, in a ring), and FreqKV
// (FREQKV.md: a fixed cache of N rows whose old span is compressed in the frequency
// domain whenever it is full).
//
// The runtime codes against Policy, one step (a chunk of tokens) at a time:
//
//	n, err := cache.Next(rec, want)        // may record a compression first
//	v := cache.View()
//	for each layer l:
//	    StoreKV(rec, k, cache.K(l), KVSlots{T: n, Rows: v.Rows, Sink: v.Sink, Cap: v.Cap, Dim: C})
//	    (the same for V)
//	    Attention(rec, q, cache.K(l), cache.V(l), rope, ..., AttentionParams{T: n, Rows: v.Rows,
//	        Sink: v.Sink, Window: v.Window, Cap: v.Cap, ...})
//	cache.Commit(n)
//
// Keys are stored before RoPE; the attention kernel rotates them by position (the cache
// row without a window, the position within sinks+window with one), so no policy ever
// re-rotates rows it moves. Every policy allocates all of its memory at construction.
package kvcache

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

// Geometry is the shape of a model's KV cache.
type Geometry struct {
	Layers, KVHeads, HeadDim int
	DType                    engine.DType // F32 or F16
}

// Channels is the values per cache row, KVHeads*HeadDim.
func (g Geometry) Channels() int { return g.KVHeads * g.HeadDim }

func (g Geometry) validate() error {
	switch {
	case g.Layers < 1 || g.KVHeads < 1 || g.HeadDim < 1:
		return fmt.Errorf("kvcache: %d layers, %d KV heads and head dim %d must all be positive", g.Layers, g.KVHeads, g.HeadDim)
	case g.DType != engine.F32 && g.DType != engine.F16:
		return fmt.Errorf("kvcache: cache type %s is not supported; use f32 or f16", g.DType)
	case g.DType == engine.F16 && g.Channels()%2 != 0:
		return fmt.Errorf("kvcache: an f16 cache needs an even row width, got %d KV heads x %d", g.KVHeads, g.HeadDim)
	}
	return nil
}

// View is what the kernels of the next step need to know: it fills shaders.KVSlots and
// shaders.AttentionParams.
type View struct {
	Rows   int // logical rows stored before the step; the step's rows go to Rows..Rows+n-1
	Sink   int // rows pinned at the start of a ring (0 when the cache never wraps)
	Window int // 0: no window; else the rows after the sinks a query sees
	Cap    int // physical rows of each K and V tensor
}

// Stats describes a cache for reports.
type Stats struct {
	Rows         int   // rows the next query attends to besides itself
	Compressions int   // FreqKV compressions so far
	Tokens       int   // tokens committed since creation or Reset
	Bytes        int64 // device bytes of K and V held (allocated once)
}

// Policy is a KV cache and the rule that keeps it within its memory.
type Policy interface {
	Name() string // "full", "window", "freqkv"
	// Next makes room for the next chunk of up to n tokens, recording on rec any
	// compression it needs first (all layers, K and V), and returns how many tokens
	// (>= 1) that chunk may take. A full cache that is full returns an error naming the
	// context size and the fix.
	Next(rec *engine.Recorder, n int) (int, error)
	// Commit records that the chunk's n rows were stored (StoreKV at logical rows
	// View().Rows..). n must be at most what Next allowed; more is a programming error
	// and panics.
	Commit(n int)
	View() View
	K(layer int) *engine.Tensor
	V(layer int) *engine.Tensor
	MaxPosition() int // rope table rows needed
	Stats() Stats
	Reset() // empty, keep allocations
	Release()
}

// store holds the K and V matrices of every layer, [cap, C] each, packed into as few
// buffers as the storage binding limit allows (so a compression of every layer takes
// as few dispatches as possible). Matrix 2l is layer l's K, 2l+1 its V. Matrices are
// stride rows apart, stride >= cap chosen so every matrix starts at a binding offset
// the device accepts.
type store struct {
	g        Geometry
	cap      int
	stride   int              // rows between matrices in an arena
	arenas   []*engine.Buffer // each holds perArena matrices (the last one fewer)
	counts   []int            // matrices in each arena
	matrices []*engine.Tensor // views, 2 per layer
	bytes    int64
}

func newStore(dev *engine.Device, g Geometry, capRows int, what string) (*store, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	c := g.Channels()
	rowBytes, err := g.DType.RowBytes(c)
	if err != nil {
		return nil, fmt.Errorf("kvcache: %w", err)
	}
	matrixBytes := uint64(capRows) * rowBytes
	limit := dev.MaxBinding()
	if matrixBytes > limit {
		return nil, fmt.Errorf("kvcache: %s: one layer's K cache of %d rows x %d values %s is %d bytes, over the device's storage binding limit of %d bytes; lower the context/cache size, use --kv f16, or use a device with a larger limit",
			what, capRows, c, g.DType, matrixBytes, limit)
	}
	align := uint64(dev.Limits.MinStorageBufferOffsetAlignment)
	if align == 0 {
		align = 256
	}
	stride := capRows
	for uint64(stride)*rowBytes%align != 0 {
		stride++
	}
	strideBytes := uint64(stride) * rowBytes
	per := 1
	if strideBytes <= limit {
		per = int(limit / strideBytes)
	}
	if maxBuf := dev.Limits.MaxBufferSize; maxBuf > 8 && strideBytes <= maxBuf-8 {
		per = min(per, int((maxBuf-8)/strideBytes))
	}
	s := &store{g: g, cap: capRows, stride: stride}
	total := 2 * g.Layers
	for first := 0; first < total; first += per {
		n := min(per, total-first)
		size := uint64(n-1)*strideBytes + matrixBytes
		buf, err := dev.NewBuffer(fmt.Sprintf("kv %s [%d:%d]", what, first, first+n), size)
		if err != nil {
			s.release()
			return nil, fmt.Errorf("kvcache: %s: %w", what, err)
		}
		s.arenas = append(s.arenas, buf)
		s.counts = append(s.counts, n)
		s.bytes += int64(size)
		for i := 0; i < n; i++ {
			s.matrices = append(s.matrices, &engine.Tensor{Buf: buf, Offset: uint64(i) * strideBytes, DType: g.DType, Rows: capRows, Cols: c})
		}
	}
	return s, nil
}

func (s *store) k(layer int) *engine.Tensor { return s.matrices[2*s.layer(layer)] }
func (s *store) v(layer int) *engine.Tensor { return s.matrices[2*s.layer(layer)+1] }

func (s *store) layer(l int) int {
	if l < 0 || l >= s.g.Layers {
		panic(fmt.Sprintf("kvcache: layer %d of a %d-layer cache", l, s.g.Layers))
	}
	return l
}

// arena is the i-th buffer as one tensor of counts[i] matrices stride rows apart.
func (s *store) arena(i int) *engine.Tensor {
	return &engine.Tensor{Buf: s.arenas[i], DType: s.g.DType, Rows: (s.counts[i]-1)*s.stride + s.cap, Cols: s.g.Channels()}
}

func (s *store) release() {
	for _, b := range s.arenas {
		b.Release()
	}
	s.arenas, s.matrices = nil, nil
}

// committer checks Commit against what Next allowed.
type committer struct {
	allowed int // tokens the last Next allowed, not yet committed
	tokens  int
}

func (c *committer) commit(n int) {
	if n < 1 || n > c.allowed {
		panic(fmt.Sprintf("kvcache: Commit(%d) after Next allowed %d", n, c.allowed))
	}
	c.allowed = 0
	c.tokens += n
}

func checkNext(n int) error {
	if n < 1 {
		return fmt.Errorf("kvcache: Next(%d): a chunk needs at least one token", n)
	}
	return nil
}
