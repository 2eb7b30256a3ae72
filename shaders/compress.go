package shaders

import (
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
)

// The FreqKV compressor on the GPU (docs/freqkv.md): orthonormal DCT-II along the sequence
// axis, keep the first m coefficients, orthonormal DCT-III of length m, scale by
// sqrt(m/L), every channel independently, in float32 whatever the cache stores.
//
// Design (dct.wgsl):
//   - Every transform is a chain of barrier-free Stockham FFT passes over global memory,
//     batched over columns. On llvmpipe the invocations of a workgroup are SIMD lanes and
//     barriers are coroutine switches, so a workgroup-memory FFT loses there; on GPUs the
//     passes read and write whole columns of adjacent channels, which coalesces.
//   - A column is a quad of 4 channels of one matrix as a vec4 of two complex numbers:
//     two real channels share one complex FFT (Re = channel c, Im = channel c+1), and each
//     invocation moves 16 bytes per element (llvmpipe's loads cost per instruction).
//   - DCT-II by Makhoul: an L-point FFT of the even/odd reordered signal, then the twiddle
//     exp(-i*pi*k/(2L)). DCT-III is the same backwards. The reordering is fused into the
//     first pass (gather from the cache) and the last pass (scatter to the cache), and the
//     middle step (`mid`) turns the first m DCT-II coefficients straight into the DCT-III
//     input, so the compression reads the span once and writes m rows once. The
//     orthonormal scales, sqrt(m/L) and 1/m all collapse into one factor 1/L.
//   - FFT lengths are factored into primes, packed into passes of radix <= 16 (first-fit
//     decreasing; a prime above 16 is a pass of its own) whose straight-line butterflies
//     are generated in Go (codelet): decimation in time down to primes, an odd prime
//     as a direct DFT on symmetric pairs. L = 4092 = 31*11*12 and m = 2046 = 31*11*6 take
//     3 passes each, 4096 = 16^3 takes 3. A length with a prime factor above
//     maxPrimeRadix runs Bluestein's chirp-z transform on a power-of-two FFT of length
//     >= 2L-1, the chirp and filter products fused into the neighbouring passes. Every
//     method is exact (no approximation beyond float32 rounding).
//   - Index math is division-free (3-D grids of columns x butterflies x groups): llvmpipe
//     scalarises integer division, which made a first version 10x slower.
//   - Twiddles, chirps, Bluestein filters and Makhoul twiddles are computed in float64 on
//     the CPU once per length (dct_plan.go), rounded to float32 and kept in small tables
//     owned by the Ops (dct_tables.go, freed by Ops.Release):
//     WGSL's sin/cos are only required to be accurate to 2^-11.
//   - Channels are processed in slices so the scratch stays bounded (CompressScratch).
//     In-place: rows [S, S+L) of each matrix are read by the first pass and the m output
//     rows written by the last pass of the same slice; other slices' channels are
//     untouched. The recent rows move up after all slices, in chunks of L-m rows so that
//     no dispatch reads rows another invocation of it writes.

// DefaultScratchBytes bounds the scratch CompressScratch and DCTScratch size by default.
const DefaultScratchBytes = 64 << 20

// CompressParams describes an in-place FreqKV compression of Batches matrices of one
// tensor. In each matrix b (rows [b*BatchStride, (b+1)*BatchStride) of the tensor) the
// Sink first rows stay, rows [Sink, Sink+Span) are replaced by their Kept-row
// compression and rows [Sink+Span, Sink+Span+Recent) move up to [Sink+Kept, ...). Rows
// past Sink+Kept+Recent are left with stale values.
type CompressParams struct {
	Sink, Span, Kept, Recent, Channels int
	Batches                            int // matrices in the tensor, e.g. K and V of several layers
	BatchStride                        int // rows between consecutive matrices (the cache capacity)
	// The ablations of FreqKV's choices (false: the method). KeepHigh keeps the highest m
	// DCT-II coefficients X[L-m:L] instead of the lowest X[0:m]. EnergyScale scales the
	// DCT-III output by 1 instead of sqrt(m/L): with orthonormal transforms the m output
	// rows then hold exactly the energy of the kept coefficients, sum_k Y[k]^2 per channel
	// (sqrt(m/L) instead keeps the DC level, i.e. the mean, of the span).
	KeepHigh, EnergyScale bool
}

func (p CompressParams) validate(cache *engine.Tensor) error {
	switch {
	case p.Span < 1 || p.Kept < 1 || p.Kept > p.Span:
		return fmt.Errorf("compress: span %d into %d rows; want 1 <= kept <= span", p.Span, p.Kept)
	case p.Sink < 0 || p.Recent < 0:
		return fmt.Errorf("compress: sink %d and recent %d must not be negative", p.Sink, p.Recent)
	case p.Channels < 1 || p.Batches < 1:
		return fmt.Errorf("compress: %d channels and %d matrices; both must be positive", p.Channels, p.Batches)
	case p.BatchStride < p.Sink+p.Span+p.Recent:
		return fmt.Errorf("compress: batch stride %d rows is below sink+span+recent = %d", p.BatchStride, p.Sink+p.Span+p.Recent)
	case p.Span > 1<<24:
		return fmt.Errorf("compress: span %d rows is over the supported 2^24", p.Span)
	}
	if cache == nil {
		return fmt.Errorf("compress: cache tensor is nil")
	}
	if cache.DType != engine.F32 && cache.DType != engine.F16 {
		return fmt.Errorf("compress: cache %q is %s; want f32 or f16", cache.Buf.Label, cache.DType)
	}
	if cache.DType == engine.F16 && p.Channels%2 != 0 {
		return fmt.Errorf("compress: an f16 cache needs an even channel count (kv_heads*head_dim), got %d", p.Channels)
	}
	if cache.Cols != p.Channels {
		return fmt.Errorf("compress: cache %q has %d columns, want %d channels", cache.Buf.Label, cache.Cols, p.Channels)
	}
	if need := (p.Batches-1)*p.BatchStride + p.Sink + p.Span + p.Recent; cache.Rows < need {
		return fmt.Errorf("compress: cache %q has %d rows, %d matrices of stride %d need %d", cache.Buf.Label, cache.Rows, p.Batches, p.BatchStride, need)
	}
	return nil
}

// elemBytes is the storage size of one cache element.
func elemBytes(t engine.DType) int {
	if t == engine.F16 {
		return 2
	}
	return 4
}

// workVec4 is the vec4 capacity of a scratch tensor as one binding, and the binding.
func (o *Ops) workBinding(scratch *engine.Tensor) (engine.Binding, int, error) {
	if scratch == nil || scratch.DType != engine.F32 {
		return engine.Binding{}, 0, fmt.Errorf("dct: scratch must be an f32 tensor")
	}
	bytes := min(scratch.Bytes(), o.Dev.MaxBinding()) &^ 15
	if bytes == 0 {
		return engine.Binding{}, 0, fmt.Errorf("dct: scratch %q is empty", scratch.Buf.Label)
	}
	return engine.Binding{Buf: scratch.Buf, Offset: scratch.Offset, Size: bytes}, int(bytes / 16), nil
}

// halfVec4 is the aligned vec4 size of one work half for cols columns of an n-point FFT.
func halfVec4(n, cols int) int { return (n*cols + 15) &^ 15 }

// maxCols is the most columns a scratch of vec4s holds for FFT length n.
func maxCols(vec4s, n int) int {
	c := vec4s / (2 * n)
	for c > 0 && 2*halfVec4(n, c) > vec4s {
		c--
	}
	return c
}

// CompressScratch is the f32 elements of scratch Compress needs to process up to
// maxChannelsPerPass channels (of all matrices together, rounded up to whole quads of 4
// channels of one matrix) per chain of passes. maxChannelsPerPass <= 0 picks the most
// that fit DefaultScratchBytes. More scratch means fewer, larger dispatches; any scratch
// of at least one quad works.
func CompressScratch(p CompressParams, maxChannelsPerPass int) int {
	return dctKnobs{}.compressScratch(p, maxChannelsPerPass)
}

func (k dctKnobs) compressScratch(p CompressParams, maxChannelsPerPass int) int {
	if p.Span < 1 || p.Kept < 1 || p.Channels < 1 || p.Batches < 1 {
		return 0
	}
	n := max(fftLen(p.Span, k.forceBluestein), fftLen(p.Kept, k.forceBluestein))
	return scratchFor(n, (p.Channels+3)/4*p.Batches, maxChannelsPerPass)
}

// DCTScratch is the f32 elements of scratch DCT2 and DCT3 need for length n and C channels.
func DCTScratch(n, channels, maxChannelsPerPass int) int {
	return dctKnobs{}.dctScratch(n, channels, maxChannelsPerPass)
}

func (k dctKnobs) dctScratch(n, channels, maxChannelsPerPass int) int {
	if n < 1 || channels < 1 {
		return 0
	}
	return scratchFor(fftLen(n, k.forceBluestein), (channels+3)/4, maxChannelsPerPass)
}

func scratchFor(n, totalCols, maxChannels int) int {
	cols := totalCols
	if maxChannels > 0 {
		cols = min(cols, max(1, (maxChannels+3)/4))
	} else {
		cols = min(cols, max(1, maxCols(DefaultScratchBytes/16, n)))
	}
	return 4 * 2 * halfVec4(n, cols)
}

// group is a run of matrices bound as one range of the cache tensor.
type group struct {
	b0, nb  int
	binding engine.Binding
	base    int // element offset of matrix b0 in the binding
}

// groups splits the matrices of t into ranges that fit one storage binding; each
// matrix needs rows [0, used) bound.
func (o *Ops) groups(t *engine.Tensor, batches, stride, used int) ([]group, error) {
	eb := uint64(elemBytes(t.DType))
	rowBytes := uint64(t.Cols) * eb
	align := uint64(o.Dev.Limits.MinStorageBufferOffsetAlignment)
	if align == 0 {
		align = 256
	}
	limit := o.Dev.MaxBinding()
	if o.knobs.bindingLimit > 0 {
		limit = min(limit, o.knobs.bindingLimit)
	}
	var out []group
	for b := 0; b < batches; {
		start := t.Offset + uint64(b)*uint64(stride)*rowBytes
		aligned := start &^ (align - 1)
		n := 0
		var size uint64
		for b+n < batches {
			end := start + uint64(n)*uint64(stride)*rowBytes + uint64(used)*rowBytes
			s := (end - aligned + 3) &^ 3
			if s > limit {
				break
			}
			n, size = n+1, s
		}
		if n == 0 {
			return nil, fmt.Errorf("dct: %d rows of %d bytes of tensor %q exceed the device's storage binding limit of %d bytes; use fewer channels per matrix or a shorter cache",
				used, rowBytes, t.Buf.Label, limit)
		}
		out = append(out, group{b0: b, nb: n, binding: engine.Binding{Buf: t.Buf, Offset: aligned, Size: size}, base: int((start - aligned) / eb)})
		b += n
	}
	return out, nil
}

// Compress records the in-place FreqKV compression of p.Batches matrices of cache
// (f32 or f16 [>= Batches*BatchStride, Channels]): in each, rows [Sink, Sink+Span) become
// the Kept rows sqrt(m/L) * DCT-III_m(DCT-II_L(x)[0:m]), computed in float32, and the
// Recent rows after the span move up behind them. scratch is an f32 tensor of at least
// CompressScratch(p, ...) elements for some channel count (more: fewer dispatches).
// The cache must not be bound elsewhere in the same dispatches; the recorder orders
// everything after earlier work on it.
func (o *Ops) Compress(rec *engine.Recorder, cache *engine.Tensor, scratch *engine.Tensor, p CompressParams) error {
	if rec == nil {
		return fmt.Errorf("compress: recorder is nil")
	}
	return o.compress(rec, cache, scratch, p)
}

// PrepareCompress compiles every kernel and uploads every table Compress(_, cache,
// scratch, p) uses, without recording anything, so the first compression does not stall
// on pipeline creation (seconds on llvmpipe) and allocates nothing.
func (o *Ops) PrepareCompress(cache *engine.Tensor, scratch *engine.Tensor, p CompressParams) error {
	return o.compress(nil, cache, scratch, p)
}

func (o *Ops) compress(rec *engine.Recorder, cache *engine.Tensor, scratch *engine.Tensor, p CompressParams) error {
	if err := p.validate(cache); err != nil {
		return err
	}
	work, vec4s, err := o.workBinding(scratch)
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	a, err := o.stage(p.Span, -1)
	if err != nil {
		return err
	}
	b, err := o.stage(p.Kept, +1)
	if err != nil {
		return err
	}
	n := max(a.conv, b.conv)
	cols := maxCols(vec4s, n)
	if cols < 1 {
		return fmt.Errorf("compress: scratch of %d f32 is below the %d one quad of channels needs (CompressScratch)", vec4s*4, 4*2*halfVec4(n, 1))
	}
	used := p.Sink + p.Span + p.Recent
	groups, err := o.groups(cache, p.Batches, p.BatchStride, used)
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	f16 := cache.DType == engine.F16
	for _, g := range groups {
		for _, s := range slices(g.nb, p.Channels, cols) {
			c := &chain{o: o, rec: rec, f16: f16, work: work, bstride: p.BatchStride, channels: p.Channels,
				base: g.base, row0: p.Sink}
			c.wgx, c.wgy = workgroupShape(s.cols())
			c.half = halfVec4(n, s.cols())
			c.cur, c.next = 0, c.half
			if err := c.stageA(s, a, g.binding); err != nil {
				return err
			}
			mp := c.params(s)
			mp.n, mp.nb, mp.len, mp.kept = uint32(a.conv), uint32(b.conv), uint32(p.Span), uint32(p.Kept)
			mp.chirpa, mp.wa, mp.chirpb, mp.wb = uint32(a.chirpOff), uint32(a.wOff), uint32(b.chirpOff), uint32(b.wOff)
			scale := 1 / (2 * float64(p.Span))
			if p.EnergyScale {
				scale *= math.Sqrt(float64(p.Span) / float64(p.Kept))
			}
			mp.scale = float32(scale)
			if p.KeepHigh {
				mp.kfirst = uint32(p.Span - p.Kept)
			}
			if err := c.rows(s, dctVariant{entry: "mid", bla: a.blue, blb: b.blue}, mp, p.Kept/2+1+b.conv-p.Kept, g.binding, a, b); err != nil {
				return err
			}
			if err := c.stageB(s, b, g.binding); err != nil {
				return err
			}
		}
		if err := o.moveRecent(rec, g, cache.DType, p, work); err != nil {
			return err
		}
	}
	return nil
}

// moveRecent moves rows [S+L, S+L+R) of each matrix of the group to [S+m, S+m+R), in
// chunks of L-m rows so that no dispatch reads a row it also writes.
func (o *Ops) moveRecent(rec *engine.Recorder, g group, dt engine.DType, p CompressParams, work engine.Binding) error {
	shift := p.Span - p.Kept
	if p.Recent == 0 || shift == 0 {
		return nil
	}
	wordsPerRow, baseWords := p.Channels, g.base
	if dt == engine.F16 {
		wordsPerRow, baseWords = p.Channels/2, g.base/2
	}
	k, err := o.dctKernel(dctVariant{entry: "moverows", wgx: 64, wgy: 1})
	if err != nil {
		return err
	}
	for i := 0; i < p.Recent; i += shift {
		rows := min(shift, p.Recent-i)
		n := rows * wordsPerRow
		prm := dctUniform{
			len: uint32(n), src: uint32((p.Sink + p.Span + i) * wordsPerRow), dst: uint32((p.Sink + p.Kept + i) * wordsPerRow),
			bstride: uint32(p.BatchStride * wordsPerRow), base: uint32(baseWords), batches: uint32(g.nb),
		}
		wg := ceilDiv(n, 64)
		x := min(wg, o.knobs.groupLimit())
		grid := [3]uint32{uint32(x), uint32(g.nb), uint32(ceilDiv(wg, x))}
		// work and the tables are unused: bind the smallest at hand.
		st, err := o.stage(1, -1)
		if err != nil {
			return err
		}
		if rec == nil {
			break // Prepare: compiled only
		}
		if err := rec.Dispatch(k, words(prm), grid, g.binding, work, st.table.All(), st.table.All()); err != nil {
			return err
		}
	}
	return nil
}
