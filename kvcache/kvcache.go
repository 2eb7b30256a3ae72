// Package kvcache holds the per-layer key and value caches on the GPU and the policies
// that decide which rows they keep: a full cache (every token, up to the context size),
// a StreamingLLM window (sink rows plus the most recent rows, in a ring), and FreqKV
// (docs/freqkv.md: a fixed cache of N rows whose old span is compressed in the frequency
// domain whenever it is full).
//
// A Spec names the policy (a Kind) and its parameters; New is the one place that turns a
// Spec into a cache. The runtime codes against Policy, one step (a chunk of tokens) at a
// time:
//
//	cache, err := kvcache.New(dev, ops, geometry, spec, maxChunk)
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
	"github.com/freqkv/freqkv/shaders"
)

// Geometry is the shape of a model's KV cache: what the model fixes, as opposed to the
// Spec, which the user chooses.
type Geometry struct {
	Layers, KVHeads, HeadDim int
}

// Channels is the values per cache row, KVHeads*HeadDim.
func (g Geometry) Channels() int { return g.KVHeads * g.HeadDim }

// Bytes is the memory of rows rows of keys and values in every layer, stored as storage:
// 2 * rows * layers * channels * element size. It is the one KV-memory formula: what a
// full cache of rows tokens takes, and (without a window ring's or an arena's padding)
// what any cache of rows rows takes.
func (g Geometry) Bytes(storage engine.DType, rows int) (int64, error) {
	return g.KVBytes(storage, storage, rows)
}

// KVBytes is Bytes with keys stored as k and values as v.
func (g Geometry) KVBytes(k, v engine.DType, rows int) (int64, error) {
	kb, err := k.RowBytes(g.Channels())
	if err != nil {
		return 0, fmt.Errorf("kvcache: %w", err)
	}
	vb, err := v.RowBytes(g.Channels())
	if err != nil {
		return 0, fmt.Errorf("kvcache: %w", err)
	}
	return int64(rows) * int64(g.Layers) * int64(kb+vb), nil
}

// SpecBytes is the memory of rows rows of keys and values stored as spec says.
func (g Geometry) SpecBytes(spec Spec, rows int) (int64, error) {
	return g.KVBytes(spec.KeyType(), spec.ValueType(), rows)
}

func (g Geometry) validate(spec Spec) error {
	if g.Layers < 1 || g.KVHeads < 1 || g.HeadDim < 1 {
		return fmt.Errorf("kvcache: %d layers, %d KV heads and head dim %d must all be positive", g.Layers, g.KVHeads, g.HeadDim)
	}
	for _, c := range []struct {
		t engine.DType
		p Param
	}{{spec.KeyType(), ParamStorage}, {spec.ValueType(), ParamValueStorage}} {
		if c.t == engine.F16 && g.Channels()%2 != 0 {
			return &SpecError{Params: []Param{c.p}, Msg: fmt.Sprintf("f16 storage needs an even row width, got %d KV heads x %d", g.KVHeads, g.HeadDim)}
		}
		if err := g.quantFits(c.t); err != nil {
			return &SpecError{Params: []Param{c.p}, Msg: err.Error()}
		}
	}
	return nil
}

// New returns the cache spec describes for a model of geometry g: the one place a Kind
// becomes an implementation. maxChunk is the most tokens a step will ask Next for (a window
// sizes its ring by it); ops runs the compression kernels (nil: a new set on dev).
// Invalid specs give a *SpecError, a cache too large for the device a *DeviceLimitError.
func New(dev *engine.Device, ops *shaders.Ops, g Geometry, spec Spec, maxChunk int) (Policy, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := g.validate(spec); err != nil {
		return nil, err
	}
	if err := spec.CheckLayers(g.Layers); err != nil {
		return nil, err
	}
	if maxChunk < 1 {
		return nil, fmt.Errorf("kvcache: chunk size %d must be positive", maxChunk)
	}
	switch spec.Kind {
	case Full:
		return newFull(dev, g, spec)
	case Window:
		return newWindow(dev, g, spec, maxChunk)
	case FreqKV:
		return newFreqKV(dev, ops, g, spec)
	case HeavyHitter:
		return newHeavy(dev, ops, g, spec)
	}
	return nil, fmt.Errorf("kvcache: policy %v validated but has no constructor", spec.Kind)
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
	Spec() Spec // what the cache was made from
	// Room is how many more tokens the cache can take; Unbounded for a policy that keeps
	// any length in its fixed memory.
	Room() int
	// Next makes room for the next chunk of up to n tokens, recording on rec any
	// compression it needs first (all layers, K and V), and returns how many tokens
	// (>= 1) that chunk may take. A full cache that is full returns an error wrapping
	// ErrContextFull.
	Next(rec *engine.Recorder, n int) (int, error)
	// Commit records that the chunk's n rows were stored (StoreKV at logical rows
	// View().Rows..). n must be at most what Next allowed; more is a programming error
	// and panics.
	Commit(n int)
	View() View
	// LayerView is View for one layer: layers of a FreqKV cache with per-layer geometry
	// hold different numbers of rows (View then has the most).
	LayerView(layer int) View
	K(layer int) *engine.Tensor
	V(layer int) *engine.Tensor
	MaxPosition() int // rope table rows needed
	Stats() Stats
	Reset() // empty, keep allocations
	Release()
}

// Unbounded is the Room of a cache that takes any number of tokens.
const Unbounded = int(^uint(0) >> 1)

// store holds the K and V matrices of every layer, [cap, C] each, packed into as few
// buffers (arenas) as the storage binding limit allows (so a compression of every layer
// takes as few dispatches as possible). With one storage type matrix 2l is layer l's K and
// 2l+1 its V, all in the same arenas; with keys and values of different types the keys
// fill arenas of their own and the values others. Matrices of an arena are stride rows
// apart, stride >= cap chosen so every matrix starts at a binding offset the device accepts.
type store struct {
	g        Geometry
	spec     Spec
	cap      int
	arenas   []arena
	matrices []*engine.Tensor // views, 2 per layer: K of layer l at 2l, V at 2l+1
	bytes    int64
}

// arena is one buffer of count matrices of one storage type, stride rows apart.
type arena struct {
	buf    *engine.Buffer
	dtype  engine.DType
	count  int
	stride int
}

// newStore allocates the matrices of capRows rows each; extra is how many rows the policy
// needs beyond spec.Size (capRows = spec.Size + extra), so a limit error can say which Size fits.
func newStore(dev *engine.Device, g Geometry, spec Spec, extra int) (*store, error) {
	s := &store{g: g, spec: spec, cap: spec.Size + extra, matrices: make([]*engine.Tensor, 2*g.Layers)}
	if spec.KeyType() == spec.ValueType() {
		all := make([]int, 2*g.Layers)
		for i := range all {
			all[i] = i
		}
		if err := s.family(dev, spec.KeyType(), all, extra); err != nil {
			return nil, err
		}
		return s, nil
	}
	keys, values := make([]int, g.Layers), make([]int, g.Layers)
	for l := range keys {
		keys[l], values[l] = 2*l, 2*l+1
	}
	if err := s.family(dev, spec.KeyType(), keys, extra); err != nil {
		return nil, err
	}
	if err := s.family(dev, spec.ValueType(), values, extra); err != nil {
		s.release()
		return nil, err
	}
	return s, nil
}

// family allocates arenas of type dt for the matrices listed (indices into s.matrices).
func (s *store) family(dev *engine.Device, dt engine.DType, list []int, extra int) error {
	what := s.spec.Kind.String()
	c := s.g.Channels()
	rowBytes, err := dt.RowBytes(c)
	if err != nil {
		return fmt.Errorf("kvcache: %w", err)
	}
	matrixBytes := uint64(s.cap) * rowBytes
	limit := dev.MaxBinding()
	if matrixBytes > limit {
		return &DeviceLimitError{Spec: s.spec, Rows: s.cap, Bytes: matrixBytes, Limit: limit, MaxSize: max(0, int(limit/rowBytes)-extra)}
	}
	align := uint64(dev.Limits.MinStorageBufferOffsetAlignment)
	if align == 0 {
		align = 256
	}
	stride := s.cap
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
	for first := 0; first < len(list); first += per {
		n := min(per, len(list)-first)
		size := uint64(n-1)*strideBytes + matrixBytes
		if shaders.IsQuantKV(dt) {
			size += 16 // the vectorised attention reads the last block in whole 16-byte words
		}
		buf, err := dev.NewBuffer(fmt.Sprintf("kv %s %s [%d:%d]", what, dt, first, first+n), size)
		if err != nil {
			s.release()
			return fmt.Errorf("kvcache: %s: %w", what, err)
		}
		s.arenas = append(s.arenas, arena{buf: buf, dtype: dt, count: n, stride: stride})
		s.bytes += int64(size)
		for i := 0; i < n; i++ {
			s.matrices[list[first+i]] = &engine.Tensor{Buf: buf, Offset: uint64(i) * strideBytes, DType: dt, Rows: s.cap, Cols: c}
		}
	}
	return nil
}

func (s *store) k(layer int) *engine.Tensor { return s.matrices[2*s.layer(layer)] }
func (s *store) v(layer int) *engine.Tensor { return s.matrices[2*s.layer(layer)+1] }

func (s *store) layer(l int) int {
	if l < 0 || l >= s.g.Layers {
		panic(fmt.Sprintf("kvcache: layer %d of a %d-layer cache", l, s.g.Layers))
	}
	return l
}

// arena is the i-th buffer as one tensor of its matrices.
func (s *store) arena(i int) *engine.Tensor {
	a := s.arenas[i]
	return &engine.Tensor{Buf: a.buf, DType: a.dtype, Rows: (a.count-1)*a.stride + s.cap, Cols: s.g.Channels()}
}

func (s *store) release() {
	for _, a := range s.arenas {
		a.buf.Release()
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
