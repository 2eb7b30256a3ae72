package shaders

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

// Quantised KV caches (kvquant_store.wgsl, kvquant_load.wgsl, kvquant_decode.wgsl): rows of
// ggml q8_0 or q4_0 blocks, 32 consecutive channels each, f16 scale first. A row of Dim
// channels is Dim/32 blocks, so Dim must be a multiple of 32; with several KV heads a block
// covers 32 consecutive channels of the row whatever the head dim (kvcache decides which
// head dims it accepts).

const kvquantWG = 64

// QuantRows places rows of Batches matrices on both sides of a (de)quantisation: row t of
// matrix b is f32 row b*F32Stride + F32First + t and cache row b*CacheStride +
// slot(Rows + t), slot as in KVSlots (Sink, Cap).
type QuantRows struct {
	T, Rows, Sink, Cap, Dim int
	Batches                 int
	F32Stride, CacheStride  int // rows between matrices on each side
	F32First                int // f32 row of matrix 0's row 0
}

// kvquantUniform is kvquant_rows.wgsl's Params.
type kvquantUniform struct {
	t, rows, sink, cap, dim, batches, fstride, cstride, f0 uint32
}

// IsQuantKV reports whether t is a quantised KV storage type these kernels read and write.
func IsQuantKV(t engine.DType) bool { return t == engine.Q8_0 || t == engine.Q4_0 }

// qtype is the QT/KT/VT constant of a storage type.
func qtype(t engine.DType) int {
	switch t {
	case engine.F16:
		return 1
	case engine.Q8_0:
		return 2
	case engine.Q4_0:
		return 3
	}
	return 0
}

func (r QuantRows) check(f32t, cache *engine.Tensor, what string) error {
	switch {
	case r.T < 1 || r.Rows < 0 || r.Dim < 1 || r.Sink < 0 || r.Cap < 1 || r.Sink > r.Cap || r.Batches < 1 || r.F32First < 0 || r.F32Stride < r.F32First+r.T || r.CacheStride < 0:
		return fmt.Errorf("%s: T = %d, Rows = %d, Dim = %d, Sink = %d, Cap = %d, Batches = %d, F32Stride = %d, F32First = %d, CacheStride = %d: want T, Dim, Cap, Batches >= 1, 0 <= Sink <= Cap, F32Stride >= F32First+T",
			what, r.T, r.Rows, r.Dim, r.Sink, r.Cap, r.Batches, r.F32Stride, r.F32First, r.CacheStride)
	case r.Dim%32 != 0:
		return fmt.Errorf("%s: a quantised cache row is whole blocks of 32 channels, got %d channels", what, r.Dim)
	}
	if ring := r.Rows + r.T - max(r.Rows, r.Sink); ring > r.Cap-r.Sink {
		return fmt.Errorf("%s: %d new rows past the %d sinks exceed the ring of %d slots (Cap %d)", what, ring, r.Sink, r.Cap-r.Sink, r.Cap)
	}
	if r.Batches > 1 && r.CacheStride < r.Cap {
		return fmt.Errorf("%s: cache stride %d rows is below Cap %d; matrices would overlap", what, r.CacheStride, r.Cap)
	}
	if err := need(what+" f32 rows", f32t, engine.F32, ((r.Batches-1)*r.F32Stride+r.F32First+r.T)*r.Dim); err != nil {
		return err
	}
	if cache == nil {
		return fmt.Errorf("%s: cache tensor is nil", what)
	}
	if !IsQuantKV(cache.DType) {
		return fmt.Errorf("%s: cache %q is %s, want q8_0 or q4_0", what, cache.Buf.Label, cache.DType)
	}
	if cache.Cols != r.Dim || cache.Rows < (r.Batches-1)*r.CacheStride+r.Cap {
		return fmt.Errorf("%s: cache %q is [%d,%d], want at least [%d,%d] (%d matrices of stride %d, Cap %d)", what, cache.Buf.Label, cache.Rows, cache.Cols,
			(r.Batches-1)*r.CacheStride+r.Cap, r.Dim, r.Batches, r.CacheStride, r.Cap)
	}
	if cache.Buf == f32t.Buf {
		return fmt.Errorf("%s: cache %q shares a buffer with the f32 rows; WebGPU forbids binding one buffer read-only and writable in a dispatch", what, cache.Buf.Label)
	}
	return nil
}

func (r QuantRows) uniform() []uint32 {
	return words(kvquantUniform{t: uint32(r.T), rows: uint32(r.Rows), sink: uint32(r.Sink), cap: uint32(r.Cap), dim: uint32(r.Dim),
		batches: uint32(r.Batches), fstride: uint32(r.F32Stride), cstride: uint32(r.CacheStride), f0: uint32(r.F32First)})
}

// QuantizeKV records quantising f32 rows of src into cache (q8_0 or q4_0), placed as r
// says, with ggml's reference rounding (kvquant_store.wgsl). Other rows of cache, and
// other blocks sharing their words, are left as they are.
func (o *Ops) QuantizeKV(rec *engine.Recorder, src, cache *engine.Tensor, r QuantRows) error {
	if err := r.check(src, cache, "kvquant store"); err != nil {
		return err
	}
	k, err := o.kernel("kvquant_store.wgsl", "quantize", engine.Constants{"WG": u(kvquantWG), "QT": u(qtype(cache.DType))})
	if err != nil {
		return err
	}
	if rec == nil {
		return nil // prepare: compiled only
	}
	return rec.Dispatch(k, r.uniform(), engine.Grid(r.Batches*r.T*r.Dim/32, kvquantWG), src.Binding(), cache.Binding())
}

// DequantizeKV records dequantising rows of cache (q8_0 or q4_0) into f32 rows of dst,
// placed as r says (kvquant_load.wgsl).
func (o *Ops) DequantizeKV(rec *engine.Recorder, cache, dst *engine.Tensor, r QuantRows) error {
	if err := r.check(dst, cache, "kvquant load"); err != nil {
		return err
	}
	k, err := o.kernel("kvquant_load.wgsl", "dequantize", engine.Constants{"WG": u(kvquantWG), "QT": u(qtype(cache.DType))})
	if err != nil {
		return err
	}
	if rec == nil {
		return nil
	}
	return rec.Dispatch(k, r.uniform(), engine.Grid(r.Batches*r.T*r.Dim, kvquantWG), cache.Binding(), dst.Binding())
}
