package shaders

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

const kvstoreWG = 64

// KVSlots places T new cache rows. Logical row j lives at physical row
//
//	slot(j) = j                              if j < Sink
//	        = Sink + (j-Sink) % (Cap-Sink)   otherwise
//
// so rows below Sink stay pinned and the rest form a ring (a StreamingLLM
// window); full and FreqKV caches keep Rows+T <= Cap and never wrap.
type KVSlots struct {
	T    int // rows to store
	Rows int // logical rows already in the cache: the new ones are Rows..Rows+T-1
	Sink int // pinned rows
	Cap  int // physical rows of the cache
	Dim  int // values per row (kv heads × head dim)
}

// Slot is slot(j) above.
func (s KVSlots) Slot(j int) int {
	if j < s.Cap {
		return j
	}
	return s.Sink + (j-s.Sink)%(s.Cap-s.Sink)
}

func (s KVSlots) check() error {
	if s.T < 1 || s.Rows < 0 || s.Dim < 1 || s.Sink < 0 || s.Cap < 1 || s.Sink > s.Cap {
		return fmt.Errorf("T = %d, Rows = %d, Dim = %d, Sink = %d, Cap = %d: want T, Dim, Cap >= 1 and 0 <= Sink <= Cap", s.T, s.Rows, s.Dim, s.Sink, s.Cap)
	}
	// the new rows past the sinks go to the ring; more than it holds would
	// write one slot twice in a single dispatch
	if ring := s.Rows + s.T - max(s.Rows, s.Sink); ring > s.Cap-s.Sink {
		return fmt.Errorf("%d new rows past the %d sinks exceed the ring of %d slots (Cap %d); store them in smaller chunks", ring, s.Sink, s.Cap-s.Sink, s.Cap)
	}
	return nil
}

// kvstoreUniform is kvstore.wgsl's Params (KVSlots as words).
type kvstoreUniform struct {
	t, rows, sink, cap, dim uint32
}

// StoreKV records writing src (f32 [T, Dim]) into cache (f32, f16, q8_0 or
// q4_0 [>= Cap, Dim]) at the slots of logical rows Rows..Rows+T-1. An f16 cache
// needs an even Dim and rounds to nearest (pack2x16float); a q8_0 or q4_0 cache
// a multiple of 32 and quantises each row's blocks (QuantizeKV).
func (o *Ops) StoreKV(rec *engine.Recorder, src, cache *engine.Tensor, p KVSlots) error {
	if err := p.check(); err != nil {
		return fmt.Errorf("kvstore: %w", err)
	}
	if err := need("kvstore", src, engine.F32, p.T*p.Dim); err != nil {
		return err
	}
	if cache == nil {
		return fmt.Errorf("kvstore: cache tensor is nil")
	}
	if cache.Cols != p.Dim || cache.Rows < p.Cap {
		return fmt.Errorf("kvstore: cache %q is [%d,%d], want at least [%d,%d] (Cap, Dim)", cache.Buf.Label, cache.Rows, cache.Cols, p.Cap, p.Dim)
	}
	entry, invocations := "store_f32", p.T*p.Dim
	switch cache.DType {
	case engine.F32:
	case engine.F16:
		if p.Dim%2 != 0 {
			return fmt.Errorf("kvstore: an f16 cache needs an even row width, got Dim = %d", p.Dim)
		}
		entry, invocations = "store_f16", p.T*p.Dim/2
	case engine.Q8_0, engine.Q4_0:
		return o.QuantizeKV(rec, src, cache, QuantRows{T: p.T, Rows: p.Rows, Sink: p.Sink, Cap: p.Cap, Dim: p.Dim, Batches: 1, F32Stride: p.T})
	default:
		return fmt.Errorf("kvstore: cache %q is %s, want f32, f16, q8_0 or q4_0", cache.Buf.Label, cache.DType)
	}
	if cache.Buf == src.Buf {
		return fmt.Errorf("kvstore: cache %q shares a buffer with src; WebGPU forbids binding one buffer read-only and writable in a dispatch", cache.Buf.Label)
	}
	k, err := o.kernel("kvstore.wgsl", entry, engine.Constants{"WG": u(kvstoreWG)})
	if err != nil {
		return err
	}
	params := words(kvstoreUniform{t: uint32(p.T), rows: uint32(p.Rows), sink: uint32(p.Sink), cap: uint32(p.Cap), dim: uint32(p.Dim)})
	return rec.Dispatch(k, params, engine.Grid(invocations, kvstoreWG), src.Binding(), cache.Binding())
}
