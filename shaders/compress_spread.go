package shaders

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
)

// A FreqKV compression spread over decode steps (compress_spread.wgsl). Compress does the
// whole compression in the step that needs it, which stalls that step for several steps'
// time; the compression is linear in the span, y = C x, so the span rows' shares can be
// accumulated as rows arrive and the compressing step only adds the last rows and writes
// the result out. Same map as Compress, summed in another order (float32 either way).
//
// The launchers take the CompressParams of Compress. Channels must be a multiple of 4.
// The table is m*L floats, so this suits caches up to a few thousand rows (SpreadFits).

const (
	spreadWG = 64
	spreadKB = 4 // output rows per invocation: each cache load serves that many
	// spreadMaxRows is the span rows one dispatch adds: an invocation runs KB
	// iterations to clear, 1+KB per row and KB to store, within loopBudget
	// (llvmpipe's loop cap). More rows take several dispatches, the earlier
	// ones accumulating.
	spreadMaxRows = (loopBudget - 2*spreadKB) / (1 + spreadKB)
)

// spreadUniform is the Params of compress_spread.wgsl.
type spreadUniform struct {
	j0, nrows  uint32 // span rows [j0, j0+nrows) to add
	sink, kept uint32 // S, m
	c4         uint32 // channels / 4
	bstride    uint32 // rows between consecutive matrices
	base       uint32 // element offset of the group's matrix 0, row 0 in the cache binding
	acc0       uint32 // the group's first matrix in acc
	boff       uint32 // first matrix of the group this dispatch takes
}

// SpreadTableBytes is the size of the [L][m] f32 table of a span.
func SpreadTableBytes(span, kept int) uint64 { return 4 * uint64(span) * uint64(kept) }

// SpreadAccElems is the f32 accumulator size for p.Batches matrices.
func SpreadAccElems(p CompressParams) int { return p.Batches * p.Kept * p.Channels }

// SpreadTable returns C[k, j] at [j*kept + k]: the compression of each unit span row,
// computed in float64 by the reference compressor (package freqkv) and rounded once.
func SpreadTable(span, kept int) ([]float32, error) {
	c, err := freqkv.NewCompressor(span, kept)
	if err != nil {
		return nil, err
	}
	const block = 64 // identity columns per call, to bound the float64 scratch
	out := make([]float32, span*kept)
	src := make([]float64, span*block)
	dst := make([]float64, kept*block)
	for j0 := 0; j0 < span; j0 += block {
		n := min(block, span-j0)
		clear(src)
		for c := range n {
			src[(j0+c)*block+c] = 1
		}
		if err := c.Compress(dst, src, block); err != nil {
			return nil, err
		}
		for c := range n {
			for k := range kept {
				out[(j0+c)*kept+k] = float32(dst[k*block+c])
			}
		}
	}
	return out, nil
}

func (o *Ops) spread(rec *engine.Recorder, entry string, cache, table, acc *engine.Tensor, p CompressParams, first, count, j0, n int) error {
	what := "compress " + entry
	if err := p.validate(cache); err != nil {
		return err
	}
	if p.Channels%4 != 0 {
		return fmt.Errorf("%s: %d channels; a spread compression needs a multiple of 4", what, p.Channels)
	}
	if err := need(what+" table", table, engine.F32, p.Span*p.Kept); err != nil {
		return err
	}
	if err := need(what+" acc", acc, engine.F32, SpreadAccElems(p)); err != nil {
		return err
	}
	if j0 < 0 || n < 0 || j0+n > p.Span {
		return fmt.Errorf("%s: span rows [%d, %d) outside [0, %d)", what, j0, j0+n, p.Span)
	}
	if first < 0 || count < 0 || first+count > p.Batches {
		return fmt.Errorf("%s: matrices [%d, %d) outside [0, %d)", what, first, first+count, p.Batches)
	}
	f16 := 0
	if cache.DType == engine.F16 {
		f16 = 1
	}
	consts := engine.Constants{"WG": u(spreadWG), "KB": u(spreadKB), "F16": u(f16)}
	k, err := o.kernel("compress_spread.wgsl", entry, consts)
	if err != nil {
		return err
	}
	// Rows past spreadMaxRows go in earlier dispatches of accumulate (j0 > 0
	// there when finishing, so they add); the last piece runs entry.
	acck := k
	if entry != "accumulate" {
		if acck, err = o.kernel("compress_spread.wgsl", "accumulate", consts); err != nil {
			return err
		}
	}
	used := p.Sink + p.Span + p.Recent
	groups, err := o.groups(cache, p.Batches, p.BatchStride, used)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for _, g := range groups {
		if rec == nil {
			// Prepare: compiled only.
			if entry == "finish" {
				return o.moveRecent(nil, g, cache.DType, p, acc.Binding())
			}
			return nil
		}
		lo, hi := max(first, g.b0), min(first+count, g.b0+g.nb)
		if lo >= hi {
			continue
		}
		grid := [3]uint32{uint32(ceilDiv(p.Kept, spreadKB*spreadWG)), uint32(p.Channels / 4), uint32(hi - lo)}
		for a := j0; a == j0 || a < j0+n; a += spreadMaxRows {
			rows, kn := min(spreadMaxRows, j0+n-a), k
			if a+rows < j0+n {
				kn = acck
			}
			prm := words(spreadUniform{j0: uint32(a), nrows: uint32(rows), sink: uint32(p.Sink), kept: uint32(p.Kept), c4: uint32(p.Channels / 4),
				bstride: uint32(p.BatchStride), base: uint32(g.base), acc0: uint32(g.b0), boff: uint32(lo - g.b0)})
			if err := rec.Dispatch(kn, prm, grid, g.binding, table.Binding(), acc.Binding()); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}

	}
	return nil
}

// SpreadAccumulate records acc += C[:, j0:j0+n] x[j0:j0+n] for matrices [first,
// first+count) of cache: span rows [j0, j0+n) (cache rows S+j0...), stored already.
// j0 = 0 starts a new sum: acc's previous contents are ignored.
func (o *Ops) SpreadAccumulate(rec *engine.Recorder, cache, table, acc *engine.Tensor, p CompressParams, first, count, j0, n int) error {
	if n == 0 || count == 0 {
		return nil
	}
	return o.spread(rec, "accumulate", cache, table, acc, p, first, count, j0, n)
}

// SpreadFinish records the end of a spread compression for matrices [first,
// first+count): rows [S, S+m) become acc (the shares of span rows [0, j0)) plus the
// shares of span rows [j0, L). j0 must be at least m, so that no row it reads is one it
// writes. The recent rows move afterwards (SpreadMoveRecent).
func (o *Ops) SpreadFinish(rec *engine.Recorder, cache, table, acc *engine.Tensor, p CompressParams, first, count, j0 int) error {
	if j0 < p.Kept {
		return fmt.Errorf("compress finish: span rows from %d would be read while rows [0, %d) are written; accumulate up to %d first", j0, p.Kept, p.Kept)
	}
	if count == 0 {
		return nil
	}
	return o.spread(rec, "finish", cache, table, acc, p, first, count, j0, p.Span-j0)
}

// SpreadMoveRecent records the move of every matrix's recent rows [S+L, S+L+R) to
// [S+m, S+m+R), after SpreadFinish has written the compressed rows of all of them.
func (o *Ops) SpreadMoveRecent(rec *engine.Recorder, cache, acc *engine.Tensor, p CompressParams) error {
	if err := p.validate(cache); err != nil {
		return err
	}
	groups, err := o.groups(cache, p.Batches, p.BatchStride, p.Sink+p.Span+p.Recent)
	if err != nil {
		return fmt.Errorf("compress move: %w", err)
	}
	for _, g := range groups {
		if err := o.moveRecent(rec, g, cache.DType, p, acc.Binding()); err != nil {
			return err
		}
	}
	return nil
}

// PrepareSpread compiles the spread kernels (and the recent-row move) without recording.
func (o *Ops) PrepareSpread(cache, table, acc *engine.Tensor, p CompressParams) error {
	for _, e := range []string{"accumulate", "finish"} {
		if err := o.spread(nil, e, cache, table, acc, p, 0, p.Batches, 0, 0); err != nil {
			return err
		}
	}
	return nil
}
