package kvcache

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

// Quantised KV storage (engine.Q8_0, engine.Q4_0): each cache row of KVHeads*HeadDim
// channels is stored as ggml blocks of 32 consecutive channels, an f16 scale then 32
// 8-bit or 4-bit values (34 or 18 bytes per 32 values: 3.8x or 7.1x smaller than f32,
// 1.9x or 3.6x smaller than f16). StoreKV quantises the rows it writes, attention
// dequantises what it reads, and a FreqKV compression dequantises the span, transforms
// it in f32 and quantises the kept rows back.
//
// Which head dims: a block is 32 consecutive channels of a row. With a head dim that is a
// multiple of 32 a block lies within one head (as llama.cpp quantises its KV cache). With a
// smaller head dim that divides 32 (stories260K: 4 KV heads x 8), a block covers 32/HeadDim
// whole heads of the row, which must be whole blocks: memory is what quantising is for, and
// it is per row, so sharing a scale between heads of one token costs only precision (the
// block's scale follows its largest head). Any other head dim (48, 80, 96+16...) would put a
// block boundary inside a head and is refused with the sizes.

// storageList names the storage types Validate accepts.
const storageList = "f32, f16, q8_0 or q4_0"

func storable(t engine.DType) bool {
	switch t {
	case engine.F32, engine.F16, engine.Q8_0, engine.Q4_0:
		return true
	}
	return false
}

// quantFits says why a cache row of g cannot be stored as t (nil: it can, or t is not
// quantised).
func (g Geometry) quantFits(t engine.DType) error {
	if t != engine.Q8_0 && t != engine.Q4_0 {
		return nil
	}
	const block = 32
	c := g.Channels()
	switch {
	case g.HeadDim%block == 0:
		return nil
	case block%g.HeadDim == 0 && c%block == 0:
		return nil
	case block%g.HeadDim == 0:
		return fmt.Errorf("%s storage quantises blocks of %d channels; head dim %d is below a block and %d KV heads x %d = %d channels are not whole blocks; use f16",
			t, block, g.HeadDim, g.KVHeads, g.HeadDim, c)
	}
	return fmt.Errorf("%s storage quantises blocks of %d channels; head dim %d is not a multiple of %d (%d KV heads x %d), so a block would straddle two heads; use f16",
		t, block, g.HeadDim, block, g.KVHeads, g.HeadDim)
}

// stagingRows is the f32 rows one quantised matrix's compression works on: the span and
// the recent rows after it (the sinks stay quantised and untouched), for the largest
// geometry of any layer.
func (f *freqKV) stagingRows() int {
	rows := f.cfg.Span() + f.cfg.Recent
	for _, c := range f.layers {
		rows = max(rows, c.Span()+c.Recent)
	}
	return rows
}

// stagingParams is compression p run on staged matrices: no sinks, span+recent rows apart.
func stagingParams(p shaders.CompressParams) shaders.CompressParams {
	p.Sink = 0
	p.BatchStride = p.Span + p.Recent
	return p
}

// stagingMatrices is how many quantised matrices one staging pass takes: as many as fit a
// quarter of the cache's own bytes (at least one, at most most), so the f32 working copy
// never outweighs the memory quantising saves.
func stagingMatrices(cacheBytes int64, rows, channels, most int) int {
	per := int64(rows) * int64(channels) * 4
	return max(1, min(most, int(cacheBytes/4/per)))
}

// compressQuant records compression p of the n quantised matrices of t (stride rows
// apart), perPass at a time: dequantise rows [S, S+L+R) of each into the staging (f32,
// L+R rows apart), compress there as an f32 cache without sinks, and quantise rows
// [0, m+R) back to rows [S, S+m+R). rec nil: compiles and uploads only.
func (f *freqKV) compressQuant(rec *engine.Recorder, t *engine.Tensor, n, stride int, p shaders.CompressParams) error {
	rb, err := t.DType.RowBytes(f.s.g.Channels())
	if err != nil {
		return err
	}
	rows := p.Span + p.Recent
	for b0 := 0; b0 < n; b0 += f.perPass {
		nb := min(f.perPass, n-b0)
		view := &engine.Tensor{Buf: t.Buf, Offset: t.Offset + uint64(b0)*uint64(stride)*rb, DType: t.DType,
			Rows: (nb-1)*stride + f.s.cap, Cols: f.s.g.Channels()}
		qr := shaders.QuantRows{T: rows, Rows: p.Sink, Cap: f.s.cap, Dim: f.s.g.Channels(), Batches: nb,
			F32Stride: rows, CacheStride: stride}
		if err := f.ops.DequantizeKV(rec, view, f.staging, qr); err != nil {
			return err
		}
		sp := stagingParams(p)
		sp.Batches = nb
		if rec == nil {
			if err := f.ops.PrepareCompress(f.staging, f.scratch, sp); err != nil {
				return err
			}
		} else if err := f.ops.Compress(rec, f.staging, f.scratch, sp); err != nil {
			return err
		}
		qr.T = p.Kept + p.Recent
		if err := f.ops.QuantizeKV(rec, f.staging, view, qr); err != nil {
			return err
		}
	}
	return nil
}
