package shaders

import (
	"fmt"
	"math"
	"sort"

	"github.com/freqkv/freqkv/engine"
)

// EmbeddingGradIndex groups token positions by id for EmbeddingBackward:
// index = [distinct ids ascending (unique) | offsets (unique+1) | token
// indices grouped by id, each group in token order (len(ids))]. Upload it
// as a u32 tensor.
func EmbeddingGradIndex(ids []uint32) (index []uint32, unique int) {
	order := make([]uint32, len(ids))
	for i := range order {
		order[i] = uint32(i)
	}
	sort.SliceStable(order, func(a, b int) bool { return ids[order[a]] < ids[order[b]] })
	var distinct, offsets []uint32
	for i, tok := range order {
		if i == 0 || ids[tok] != ids[order[i-1]] {
			distinct = append(distinct, ids[tok])
			offsets = append(offsets, uint32(i))
		}
	}
	offsets = append(offsets, uint32(len(ids)))
	index = append(append(distinct, offsets...), order...)
	return index, len(distinct)
}

// embeddingBwdUniform is embedding_bwd.wgsl's Params.
type embeddingBwdUniform struct {
	unique, t, d, vocab uint32
}

// EmbeddingBackward records dtable[ids[i], :] += dy[i, :] for t tokens
// (embedding_bwd.wgsl), given the u32 index EmbeddingGradIndex built from
// the ids and its unique count. dtable is f32 [V, d]; ids >= V are skipped
// (validate ids before the forward). Deterministic: no atomics.
func (o *Ops) EmbeddingBackward(rec *engine.Recorder, index, dy, dtable *engine.Tensor, unique, t, d int) error {
	const what = "embedding backward"
	if unique < 1 || t < unique || d < 1 {
		return fmt.Errorf("%s: %d distinct ids of %d tokens, width %d: want 1 <= unique <= t and d >= 1", what, unique, t, d)
	}
	if t > loopBudget {
		// an id's gradient loops over its occurrences (llvmpipe's loop cap, docs/webgpu.md)
		return fmt.Errorf("%s: %d tokens are over the %d one dispatch sums; split the step", what, t, loopBudget)
	}
	if dtable == nil || dtable.Cols != d {
		return fmt.Errorf("%s: dtable must be [V, %d]", what, d)
	}
	if uint64(max(t, dtable.Rows))*uint64(d) > math.MaxUint32 {
		return fmt.Errorf("%s: %d rows of %d overflow 32-bit indexing", what, max(t, dtable.Rows), d)
	}
	if err := need(what+" index", index, engine.U32, 2*unique+1+t); err != nil {
		return err
	}
	if err := need(what+" dy", dy, engine.F32, t*d); err != nil {
		return err
	}
	if err := need(what+" dtable", dtable, engine.F32, dtable.Rows*d); err != nil {
		return err
	}
	if err := distinct(what, dtable, index, dy); err != nil {
		return err
	}
	k, err := o.kernel("embedding_bwd.wgsl", "embedding_bwd", engine.Constants{"WG": u(embeddingWG)})
	if err != nil {
		return err
	}
	return rec.Dispatch(k, words(embeddingBwdUniform{unique: uint32(unique), t: uint32(t), d: uint32(d), vocab: uint32(dtable.Rows)}), engine.Grid(unique*d, embeddingWG),
		index.Binding(), dy.Binding(), dtable.Binding())
}
