package shaders

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
)

const embeddingWG = 64

// embeddingUniform is embedding.wgsl's Params, for one part of the table.
type embeddingUniform struct {
	t, d       uint32 // tokens, row length
	row0, rows uint32 // the part's first table row and its rows
	last       uint32 // 1 for the table's last part
	nan        uint32 // bits of a NaN (WGSL constant expressions may not be NaN)
}

// Embedding records out[i, :] = table[ids[i], :], dequantised to f32, for
// the first t ids: ids is u32 with at least t elements, table a [V, D]
// weight of f32, f16, q8_0, q4_0 or a K-quant, and out f32 with at least t rows of D
// (row stride D). It records one dispatch per table part, each writing the
// rows whose ids fall in its rows. An id >= V reads nothing and yields a row
// of NaN (the runtime validates ids before upload; this keeps a bad one
// visible and in bounds).
func (o *Ops) Embedding(rec *engine.Recorder, ids *engine.Tensor, table *engine.Weight, out *engine.Tensor, t int) error {
	if table == nil || len(table.Parts) == 0 {
		return fmt.Errorf("embedding: table is nil or empty")
	}
	what := fmt.Sprintf("embedding %q", table.Label)
	code, ok := weightCode(table.DType)
	if !ok {
		return fmt.Errorf("%s: table type %s is not supported (f32, f16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q4_k, q5_k, q6_k)", what, table.DType)
	}
	d := table.Cols
	if t < 1 || d < 1 || table.Rows < 1 {
		return fmt.Errorf("%s: empty gather: %d ids from a [%d,%d] table", what, t, table.Rows, d)
	}
	if d%table.DType.BlockSize() != 0 {
		return fmt.Errorf("%s: %s tables need rows of a multiple of %d, got %d", what, table.DType, table.DType.BlockSize(), d)
	}
	if uint64(t)*uint64(d) > math.MaxUint32 {
		return fmt.Errorf("%s: %d ids of %d elements overflow 32-bit indexing", what, t, d)
	}
	if err := need(what+" ids", ids, engine.U32, t); err != nil {
		return err
	}
	if err := need(what+" out", out, engine.F32, t*d); err != nil {
		return err
	}
	if ids.Buf == out.Buf {
		return fmt.Errorf("%s: ids and out share buffer %q; WebGPU forbids binding one buffer read-only and writable in a dispatch", what, out.Buf.Label)
	}
	if err := checkParts(what, table); err != nil {
		return err
	}
	file := "embedding.wgsl"
	if code >= 4 {
		file = "embedding_k.wgsl"
	}
	k, err := o.kernel(file, "embedding", engine.Constants{"WTYPE": u(code), "WG": u(embeddingWG)})
	if err != nil {
		return err
	}
	groups := engine.Grid(t*d, embeddingWG)
	for i, part := range table.Parts {
		params := words(embeddingUniform{t: uint32(t), d: uint32(d), row0: uint32(table.Row0(i)), rows: uint32(part.Rows),
			last: b2u(i == len(table.Parts)-1), nan: 0x7fc00000})
		if err := rec.Dispatch(k, params, groups, ids.Binding(), part.Binding(), out.Binding()); err != nil {
			return fmt.Errorf("%s part %d: %w", what, i, err)
		}
	}
	return nil
}
