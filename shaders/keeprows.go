package shaders

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

// KeepRowsParams describes a heavy-hitter compaction of Batches matrices of one cache
// tensor (keeprows.wgsl): in matrix b, for each KV head g, rows [Sink, Sink+Keep) become
// rows idx[layer][g][0..Keep) of that head, layer = (FirstMatrix + b) / 2.
type KeepRowsParams struct {
	Sink, Keep, KVHeads, HeadDim int
	Batches, BatchStride         int
	FirstMatrix                  int // index of the tensor's first matrix (K and V alternate by layer)
	Layers                       int // rows of idx / (KVHeads*Keep)
}

// keeprowsUniform is keeprows.wgsl's Params.
type keeprowsUniform struct {
	sink, keep, stride, rowWords, headWords, kvHeads, batches, m0 uint32
}

// KeepRowsTemp is the u32 words of temp KeepRows needs for p.
func KeepRowsTemp(p KeepRowsParams, dt engine.DType) int {
	hw := p.HeadDim
	if dt == engine.F16 {
		hw /= 2
	}
	return p.Batches * p.KVHeads * p.Keep * hw
}

// KeepRows records the compaction. idx is u32 [Layers*KVHeads*Keep], each list increasing
// and within [Sink, BatchStride); temp is u32 with KeepRowsTemp words.
func (o *Ops) KeepRows(rec *engine.Recorder, cache, idx, temp *engine.Tensor, p KeepRowsParams) error {
	switch {
	case p.Sink < 0 || p.Keep < 1 || p.KVHeads < 1 || p.HeadDim < 1 || p.Batches < 1:
		return fmt.Errorf("keep rows: sink %d, keep %d, %d KV heads of %d, %d matrices: want sink >= 0 and the rest positive", p.Sink, p.Keep, p.KVHeads, p.HeadDim, p.Batches)
	case p.Sink+p.Keep > p.BatchStride:
		return fmt.Errorf("keep rows: sink %d + keep %d rows exceed the matrix stride %d", p.Sink, p.Keep, p.BatchStride)
	case (p.FirstMatrix+p.Batches+1)/2 > p.Layers:
		return fmt.Errorf("keep rows: matrices %d..%d need %d layers of indices, have %d", p.FirstMatrix, p.FirstMatrix+p.Batches-1, (p.FirstMatrix+p.Batches+1)/2, p.Layers)
	case cache == nil || idx == nil || temp == nil:
		return fmt.Errorf("keep rows: nil tensor")
	case cache.DType != engine.F32 && cache.DType != engine.F16:
		return fmt.Errorf("keep rows: cache %q is %s; want f32 or f16", cache.Buf.Label, cache.DType)
	case cache.DType == engine.F16 && p.HeadDim%2 != 0:
		return fmt.Errorf("keep rows: an f16 cache needs an even head dim, got %d", p.HeadDim)
	case cache.Cols != p.KVHeads*p.HeadDim:
		return fmt.Errorf("keep rows: cache %q has %d columns, want %d", cache.Buf.Label, cache.Cols, p.KVHeads*p.HeadDim)
	case cache.Rows < (p.Batches-1)*p.BatchStride+p.Sink+p.Keep:
		return fmt.Errorf("keep rows: cache %q has %d rows, too few for %d matrices of stride %d", cache.Buf.Label, cache.Rows, p.Batches, p.BatchStride)
	}
	if err := need("keep rows idx", idx, engine.U32, p.Layers*p.KVHeads*p.Keep); err != nil {
		return err
	}
	if err := need("keep rows temp", temp, engine.U32, KeepRowsTemp(p, cache.DType)); err != nil {
		return err
	}
	if temp.Buf == cache.Buf || temp.Buf == idx.Buf || idx.Buf == cache.Buf {
		return fmt.Errorf("keep rows: cache, idx and temp must be distinct buffers")
	}
	hw, rw := p.HeadDim, p.KVHeads*p.HeadDim
	if cache.DType == engine.F16 {
		hw, rw = hw/2, rw/2
	}
	params := words(keeprowsUniform{sink: uint32(p.Sink), keep: uint32(p.Keep), stride: uint32(p.BatchStride), rowWords: uint32(rw),
		headWords: uint32(hw), kvHeads: uint32(p.KVHeads), batches: uint32(p.Batches), m0: uint32(p.FirstMatrix)})
	grid := engine.Grid(KeepRowsTemp(p, cache.DType), 64)
	for _, entry := range []string{"gather", "scatter"} {
		k, err := o.kernel("keeprows.wgsl", entry, engine.Constants{"WG": u(64)})
		if err != nil {
			return err
		}
		if err := rec.Dispatch(k, params, grid, cache.Binding(), idx.Binding(), temp.Binding()); err != nil {
			return err
		}
	}
	return nil
}
