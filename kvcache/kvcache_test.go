package kvcache

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/shaders"
	"github.com/stretchr/testify/require"
)

// rows returns n random rows of width values in [-1, 1], exactly representable in f16
// (so an f16 cache stores them exactly and the reference sees the same numbers).
func randRows(r *rand.Rand, n, width int) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		out[i] = make([]float64, width)
		for j := range out[i] {
			out[i][j] = float64(ggml.F16ToF32(ggml.F32ToF16(float32(r.Float64()*2 - 1))))
		}
	}
	return out
}

func upload(t *testing.T, dev *engine.Device, rows [][]float64) *engine.Tensor {
	t.Helper()
	flat := make([]float32, 0, len(rows)*len(rows[0]))
	for _, row := range rows {
		for _, v := range row {
			flat = append(flat, float32(v))
		}
	}
	x, err := dev.NewTensor("src", engine.F32, len(rows), len(rows[0]))
	require.NoError(t, err)
	require.NoError(t, x.UploadF32(flat))
	return x
}

// readRows reads the first n rows of a cache tensor as float64.
func readRows(t *testing.T, c *engine.Tensor, n int) [][]float64 {
	t.Helper()
	rb, err := c.DType.RowBytes(c.Cols)
	require.NoError(t, err)
	raw, err := c.Buf.Read(c.Offset, uint64(n)*rb)
	require.NoError(t, err)
	out := make([][]float64, n)
	if c.DType == engine.Q8_0 || c.DType == engine.Q4_0 {
		gt := map[engine.DType]ggml.Type{engine.Q8_0: ggml.Q8_0, engine.Q4_0: ggml.Q4_0}[c.DType]
		f, err := ggml.Dequantize(gt, raw, n*c.Cols)
		require.NoError(t, err)
		for i := range out {
			out[i] = make([]float64, c.Cols)
			for j := range out[i] {
				out[i][j] = float64(f[i*c.Cols+j])
			}
		}
		return out
	}
	for i := range out {
		out[i] = make([]float64, c.Cols)
		for j := range out[i] {
			if c.DType == engine.F16 {
				out[i][j] = float64(ggml.F16ToF32(binary.LittleEndian.Uint16(raw[2*(i*c.Cols+j):])))
			} else {
				out[i][j] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(i*c.Cols+j):])))
			}
		}
	}
	return out
}

// relErr is max|got-want| / max|want| over all values.
func relErr(t *testing.T, got, want [][]float64) float64 {
	t.Helper()
	require.Equal(t, len(want), len(got))
	maxd, maxw := 0.0, 0.0
	for i := range want {
		for j := range want[i] {
			d := math.Abs(got[i][j] - want[i][j])
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			maxd, maxw = math.Max(maxd, d), math.Max(maxw, math.Abs(want[i][j]))
		}
	}
	return maxd / maxw
}

// store writes one chunk of K and V rows of every layer through StoreKV at the view.
func storeChunk(t *testing.T, dev *engine.Device, ops *shaders.Ops, rec *engine.Recorder, p Policy, g Geometry, keys, values [][][]float64) []*engine.Tensor {
	t.Helper()
	var tmp []*engine.Tensor
	for l := 0; l < g.Layers; l++ {
		v := p.LayerView(l)
		for i, rows := range [][][]float64{keys[l], values[l]} {
			src := upload(t, dev, rows)
			tmp = append(tmp, src)
			dst := p.K(l)
			if i == 1 {
				dst = p.V(l)
			}
			require.NoError(t, ops.StoreKV(rec, src, dst, shaders.KVSlots{T: len(rows), Rows: v.Rows, Sink: v.Sink, Cap: v.Cap, Dim: g.Channels()}))
		}
	}
	return tmp
}

func release(ts []*engine.Tensor) {
	for _, x := range ts {
		x.Release()
	}
}

// TestFreqKVCacheEvolution stores random rows through the FreqKV policy, token by token
// and in random groups, and compares every layer's K and V on the GPU with
// freqkv.RefCache after each compression.
func TestFreqKVCacheEvolution(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	for _, tc := range []struct {
		name     string
		g        Geometry
		spec     Spec
		tokens   int
		maxGroup int // 1: token by token
	}{
		{"odd span, recent rows, token by token", Geometry{2, 2, 4}, Spec{Kind: FreqKV, Size: 24, Sink: 2, Recent: 3, Ratio: 0.5, Storage: engine.F32}, 90, 1},
		{"f16, ratio 0.3, groups", Geometry{3, 1, 6}, Spec{Kind: FreqKV, Size: 40, Sink: 4, Ratio: 0.3, Storage: engine.F16}, 200, 25},
		{"bluestein span 67, f16, token by token", Geometry{1, 2, 2}, Spec{Kind: FreqKV, Size: 70, Sink: 1, Recent: 2, Ratio: 0.5, Storage: engine.F16}, 150, 1},
		{"recent rows overlap the move, groups", Geometry{2, 1, 3}, Spec{Kind: FreqKV, Size: 30, Sink: 0, Recent: 12, Ratio: 0.6, Storage: engine.F32}, 150, 9},
		{"ablation keep high, recent rows, groups", Geometry{2, 2, 4}, Spec{Kind: FreqKV, Size: 24, Sink: 2, Recent: 3, Ratio: 0.5, Keep: freqkv.KeepHigh, Storage: engine.F32}, 90, 7},
		{"ablation energy scale, f16, token by token", Geometry{1, 2, 2}, Spec{Kind: FreqKV, Size: 40, Sink: 4, Ratio: 0.3, Scale: freqkv.ScaleEnergy, Storage: engine.F16}, 120, 1},
		{"ablation keep high and energy, bluestein span 67", Geometry{1, 1, 4}, Spec{Kind: FreqKV, Size: 70, Sink: 1, Recent: 2, Ratio: 0.5, Keep: freqkv.KeepHigh, Scale: freqkv.ScaleEnergy, Storage: engine.F32}, 150, 11},
		{"per-layer ratios, recent rows, groups", Geometry{3, 2, 4}, Spec{Kind: FreqKV, Size: 24, Sink: 2, Recent: 3, Ratios: []float64{0.25, 0.5, 0.75}, Storage: engine.F32}, 120, 7},
		{"per-layer sizes and ratios, f16, token by token", Geometry{2, 1, 6}, Spec{Kind: FreqKV, Size: 40, Sink: 4, Sizes: []int{40, 17}, Ratios: []float64{0.3, 0.5}, Storage: engine.F16}, 150, 1},
		{"N=4096 S=4 (L=4092, m=2046), groups", Geometry{1, 1, 4}, DefaultSpec(FreqKV, 4096, engine.F32), 4096 + 3*2046 + 5, 900},
		{"f16, N=64, token by token", Geometry{2, 2, 4}, Spec{Kind: FreqKV, Size: 64, Sink: 4, Recent: 5, Ratio: 0.5, Storage: engine.F16}, 300, 1},
		{"f32, N=48, tokens then groups", Geometry{1, 1, 8}, Spec{Kind: FreqKV, Size: 48, Sink: 2, Ratio: 0.4, Storage: engine.F32}, 200, 3},
	} {
		for _, sched := range []Schedule{Spread, Whole} {
			tc := tc
			tc.spec.Compress = sched
			t.Run(fmt.Sprintf("%s/%s", tc.name, map[Schedule]string{Spread: "spread", Whole: "whole"}[sched]), func(t *testing.T) {
				r := rand.New(rand.NewPCG(11, uint64(tc.tokens)))
				p, err := New(dev, ops, tc.g, tc.spec, 1)
				require.NoError(t, err)
				defer p.Release()
				require.Equal(t, tc.spec, p.Spec())
				require.Equal(t, Unbounded, p.Room())
				require.Equal(t, tc.spec.Size, p.MaxPosition())
				refs := make([]*freqkv.RefCache, tc.g.Layers)
				for l := range refs {
					refs[l], err = freqkv.NewRefCache(tc.spec.LayerFreqKV(l), tc.g.Channels())
					require.NoError(t, err)
				}
				memory := dev.AllocatedBytes()
				tol := 1e-5
				if tc.spec.Storage == engine.F16 {
					// each compression rounds its m rows to f16 (half an ulp, at most 2^-11
					// of the largest value); earlier roundings shrink with the resampling
					tol = 2 * math.Pow(2, -11)
				}
				worst, checks := 0.0, 0
				compare := func() {
					for l, ref := range refs {
						rows := ref.Rows()
						require.Equal(t, rows, p.LayerView(l).Rows)
						e := max(relErr(t, readRows(t, p.K(l), rows), ref.Keys()), relErr(t, readRows(t, p.V(l), rows), ref.Values()))
						require.LessOrEqualf(t, e, tol, "layer %d after %d tokens, %d compressions", l, p.Stats().Tokens, p.Stats().Compressions)
						worst = max(worst, e)
						checks++
					}
				}
				for done := 0; done < tc.tokens; {
					want := min(tc.tokens-done, 1+r.IntN(tc.maxGroup))
					rec := dev.NewRecorder()
					before := p.Stats().Compressions
					n, err := p.Next(rec, want)
					require.NoError(t, err)
					require.True(t, n >= 1 && n <= want)
					keys, values := make([][][]float64, tc.g.Layers), make([][][]float64, tc.g.Layers)
					for l := range keys {
						keys[l], values[l] = randRows(r, n, tc.g.Channels()), randRows(r, n, tc.g.Channels())
					}
					tmp := storeChunk(t, dev, ops, rec, p, tc.g, keys, values)
					require.NoError(t, rec.SubmitAndWait())
					release(tmp)
					p.Commit(n)
					for l, ref := range refs {
						require.NoError(t, ref.Append(keys[l], values[l]))
					}
					done += n
					if !tc.spec.PerLayer() {
						require.Equal(t, refs[0].Compressions(), p.Stats().Compressions)
					}
					if p.Stats().Compressions != before || done == tc.tokens {
						compare()
					}
				}
				require.Greater(t, p.Stats().Compressions, 1)
				require.Equal(t, tc.tokens, p.Stats().Tokens)
				require.Equal(t, memory, dev.AllocatedBytes(), "device memory grew after construction")
				writes := 0
				if sp := p.(*freqKV).sp; sp != nil {
					writes = sp.writes
				}
				if sched == Spread && !tc.spec.PerLayer() && tc.spec.Keep == freqkv.KeepLow && tc.spec.Scale == freqkv.ScaleAmplitude && SpreadFits(dev, tc.g, tc.spec.FreqKV()) && tc.maxGroup == 1 {
					// token by token, every compression after the first span is finished from the accumulator
					require.GreaterOrEqual(t, writes, p.Stats().Compressions-1, "spread compressions")
				}
				t.Logf("%d compressions (%d finished from the spread accumulator), %d comparisons, largest relative error %.3g (bound %.3g)", p.Stats().Compressions, writes, checks, worst, tol)

				p.Reset()
				require.Equal(t, Stats{Bytes: p.Stats().Bytes}, p.Stats())
				n, err := p.Next(dev.NewRecorder(), 5)
				require.NoError(t, err)
				require.Equal(t, 5, n)
			})
		}
	}
}

const ropeBase = 10000

// attend runs shaders.Attention for one chunk of n queries of layer 0.
func attend(t *testing.T, dev *engine.Device, ops *shaders.Ops, rec *engine.Recorder, p Policy, g Geometry, heads int, rope *engine.Tensor, queries [][]float64) (*engine.Tensor, []*engine.Tensor) {
	t.Helper()
	v := p.View()
	ap := shaders.AttentionParams{T: len(queries), Heads: heads, KVHeads: g.KVHeads, HeadDim: g.HeadDim, RopeDim: g.HeadDim,
		Rows: v.Rows, Sink: v.Sink, Window: v.Window, Cap: v.Cap, Scale: float32(1 / math.Sqrt(float64(g.HeadDim)))}
	q := upload(t, dev, queries)
	out, err := dev.NewTensor("out", engine.F32, len(queries), heads*g.HeadDim)
	require.NoError(t, err)
	scratch, err := dev.NewTensor("attention scratch", engine.F32, 1, shaders.AttentionScratch(ap))
	require.NoError(t, err)
	require.NoError(t, ops.Attention(rec, q, p.K(0), p.V(0), rope, out, scratch, ap))
	return out, []*engine.Tensor{q, out, scratch}
}

func ropeTable(t *testing.T, dev *engine.Device, p Policy, g Geometry) *engine.Tensor {
	table := shaders.RopeTable(p.MaxPosition(), g.HeadDim, ropeBase, 1)
	rope, err := dev.NewTensor("rope", engine.F32, p.MaxPosition(), g.HeadDim)
	require.NoError(t, err)
	require.NoError(t, rope.UploadF32(table))
	return rope
}

// runAttention feeds tokens in random chunks through a one-layer policy, runs the GPU
// attention of each chunk's queries, and compares every output with the float64 model:
// seen(rowsBefore, t) gives the keys and values query t sees, in position order.
func runAttention(t *testing.T, dev *engine.Device, p Policy, g Geometry, heads, tokens, maxChunk int, tol float64, r *rand.Rand,
	appendRows func(keys, values [][]float64), seen func(row int) (keys, values [][]float64)) float64 {
	t.Helper()
	ops := shaders.New(dev)
	rope := ropeTable(t, dev, p, g)
	defer rope.Release()
	ap := freqkv.AttentionParams{Heads: heads, KVHeads: g.KVHeads, HeadDim: g.HeadDim, RopeBase: ropeBase}
	worst := 0.0
	for done := 0; done < tokens; {
		rec := dev.NewRecorder()
		n, err := p.Next(rec, min(tokens-done, 1+r.IntN(maxChunk)))
		require.NoError(t, err)
		keys, values := randRows(r, n, g.Channels()), randRows(r, n, g.Channels())
		queries := randRows(r, n, heads*g.HeadDim)
		ks, vs := make([][][]float64, g.Layers), make([][][]float64, g.Layers)
		for l := range ks {
			ks[l], vs[l] = keys, values // every layer holds the same rows
		}
		tmp := storeChunk(t, dev, ops, rec, p, g, ks, vs)
		out, tmp2 := attend(t, dev, ops, rec, p, g, heads, rope, queries)
		require.NoError(t, rec.SubmitAndWait())
		rowsBefore := p.View().Rows
		got := readRows(t, out, n)
		release(append(tmp, tmp2...))
		p.Commit(n)
		appendRows(keys, values)
		for i, q := range queries {
			ks, vs := seen(rowsBefore + i)
			want, err := freqkv.RefAttention(q, ks, vs, len(ks)-1, ap)
			require.NoError(t, err)
			e := relErr(t, [][]float64{got[i]}, [][]float64{want})
			require.LessOrEqualf(t, e, tol, "query at logical row %d", rowsBefore+i)
			worst = max(worst, e)
		}
		done += n
	}
	return worst
}

// TestFreqKVAttention compares the attention of every query over the compressed GPU
// cache (keys pre-RoPE, rotated by cache row in the kernel) with freqkv.RefAttention
// over the reference cache's rows, across several compressions: within 1e-4 (relative to
// the largest output) for an f32 cache; an f16 cache rounds every compressed row to half
// precision (2^-11 relative), which the attention passes on, so it gets 1e-3.
func TestFreqKVAttention(t *testing.T) {
	dev := gputest.Device(t)
	for _, dt := range []engine.DType{engine.F32, engine.F16} {
		t.Run(dt.String(), func(t *testing.T) {
			g := Geometry{Layers: 1, KVHeads: 2, HeadDim: 8}
			spec := Spec{Kind: FreqKV, Size: 48, Sink: 4, Recent: 2, Ratio: 0.5, Storage: dt}
			p, err := New(dev, nil, g, spec, 30)
			require.NoError(t, err)
			defer p.Release()
			ref, err := freqkv.NewRefCache(spec.FreqKV(), g.Channels())
			require.NoError(t, err)
			r := rand.New(rand.NewPCG(12, 13))
			// the chunk's rows are appended first; a query at cache row i sees rows 0..i
			tol := 1e-4
			if dt == engine.F16 {
				tol = 1e-3
			}
			worst := runAttention(t, dev, p, g, 4, 260, 30, tol, r,
				func(keys, values [][]float64) { require.NoError(t, ref.Append(keys, values)) },
				func(row int) ([][]float64, [][]float64) { return ref.Keys()[:row+1], ref.Values()[:row+1] })
			require.GreaterOrEqual(t, p.Stats().Compressions, 5)
			t.Logf("%s: %d compressions, largest relative error %.3g", dt, p.Stats().Compressions, worst)
		})
	}
}

// TestFullPolicy checks the full cache's bookkeeping and attention against a plain list
// of every row, and its error when the context is exhausted.
func TestFullPolicy(t *testing.T) {
	dev := gputest.Device(t)
	g := Geometry{Layers: 1, KVHeads: 1, HeadDim: 4}
	spec := Spec{Kind: Full, Size: 10, Storage: engine.F32}
	p, err := New(dev, nil, g, spec, 4)
	require.NoError(t, err)
	defer p.Release()
	require.Equal(t, spec, p.Spec())
	require.Equal(t, 10, p.MaxPosition())
	require.Equal(t, 10, p.Room())
	require.Equal(t, View{Cap: 10}, p.View())

	rec := dev.NewRecorder()
	for _, want := range []struct{ ask, get int }{{4, 4}, {4, 4}, {4, 2}} {
		n, err := p.Next(rec, want.ask)
		require.NoError(t, err)
		require.Equal(t, want.get, n)
		p.Commit(n)
	}
	require.Zero(t, p.Room())
	_, err = p.Next(rec, 1)
	require.ErrorIs(t, err, ErrContextFull)
	require.ErrorContains(t, err, "holds all 10 tokens")
	_, err = p.Next(rec, 0)
	require.ErrorContains(t, err, "at least one token")
	require.Equal(t, Stats{Rows: 10, Tokens: 10, Bytes: p.Stats().Bytes}, p.Stats())
	require.GreaterOrEqual(t, p.Stats().Bytes, int64(2*10*4*4))

	p.Reset()
	var keys, values [][]float64
	worst := runAttention(t, dev, p, g, 2, 10, 4, 1e-5, rand.New(rand.NewPCG(14, 15)),
		func(k, v [][]float64) { keys, values = append(keys, k...), append(values, v...) },
		func(row int) ([][]float64, [][]float64) { return keys[:row+1], values[:row+1] })
	t.Logf("full: largest relative error %.3g", worst)
	require.Equal(t, keys, readRows(t, p.K(0), 10))

	require.Panics(t, func() { p.Commit(1) }, "Commit without Next")
	p.Reset()
	n, err := p.Next(rec, 3)
	require.NoError(t, err)
	require.Panics(t, func() { p.Commit(n + 1) }, "Commit beyond Next")

	_, err = New(dev, nil, g, Spec{Kind: Full, Size: 0, Storage: engine.F32}, 1)
	require.ErrorContains(t, err, "a full cache of 0 rows holds nothing")
}

// TestWindowPolicy checks the StreamingLLM ring: what each query sees (sinks plus the
// most recent rows, positions within that), the chunk limit, and where rows land.
func TestWindowPolicy(t *testing.T) {
	dev := gputest.Device(t)
	for _, tc := range []struct{ size, sink, maxChunk int }{{7, 2, 3}, {5, 0, 1}, {9, 4, 6}} {
		t.Run(fmt.Sprintf("size%d_sink%d_chunk%d", tc.size, tc.sink, tc.maxChunk), func(t *testing.T) {
			g := Geometry{Layers: 2, KVHeads: 1, HeadDim: 4}
			p, err := New(dev, nil, g, Spec{Kind: Window, Size: tc.size, Sink: tc.sink, Storage: engine.F16}, tc.maxChunk)
			require.NoError(t, err)
			defer p.Release()
			require.Equal(t, Window, p.Spec().Kind)
			require.Equal(t, Unbounded, p.Room())
			require.Equal(t, tc.size, p.MaxPosition())
			capRows := tc.size + tc.maxChunk - 1
			require.Equal(t, View{Sink: tc.sink, Window: tc.size - tc.sink, Cap: capRows}, p.View())
			n, err := p.Next(nil, 100)
			require.NoError(t, err)
			require.Equal(t, tc.maxChunk, n)

			var keys, values [][]float64
			// the float64 model: query at logical row r sees sinks [0, min(sink, r+1)) and
			// rows [lo, r], lo = max(sink, r+1-(size-sink)), in that order
			seen := func(row int) ([][]float64, [][]float64) {
				lo := max(tc.sink, row+1-(tc.size-tc.sink))
				var ks, vs [][]float64
				for j := 0; j < min(tc.sink, row+1); j++ {
					ks, vs = append(ks, keys[j]), append(vs, values[j])
				}
				for j := lo; j <= row; j++ {
					ks, vs = append(ks, keys[j]), append(vs, values[j])
				}
				require.LessOrEqual(t, len(ks), tc.size)
				return ks, vs
			}
			tokens := 6*capRows + 3
			worst := runAttention(t, dev, p, g, 2, tokens, tc.maxChunk+2, 1e-5, rand.New(rand.NewPCG(16, uint64(tc.size))),
				func(k, v [][]float64) { keys, values = append(keys, k...), append(values, v...) }, seen)
			t.Logf("window: largest relative error %.3g", worst)
			require.Equal(t, Stats{Rows: tc.size - 1, Tokens: tokens, Bytes: p.Stats().Bytes}, p.Stats())
			require.Equal(t, tokens, p.View().Rows)

			// ring wrap: sinks stay, logical row j of the last Cap-sink lives at slot(j)
			got := readRows(t, p.K(0), capRows)
			slots := shaders.KVSlots{Sink: tc.sink, Cap: capRows}
			for j := 0; j < tc.sink; j++ {
				require.Equal(t, keys[j], got[j], "sink %d", j)
			}
			for j := tokens - (capRows - tc.sink); j < tokens; j++ {
				require.Equal(t, keys[j], got[slots.Slot(j)], "logical row %d", j)
			}
		})
	}
	g := Geometry{Layers: 1, KVHeads: 1, HeadDim: 4}
	win := func(size, sink int) Spec { return Spec{Kind: Window, Size: size, Sink: sink, Storage: engine.F32} }
	_, err := New(dev, nil, g, win(4, 4), 1)
	require.ErrorContains(t, err, "keeps none after its 4 sinks")
	_, err = New(dev, nil, g, win(4, -1), 1)
	require.ErrorContains(t, err, "sink -1 is negative")
	_, err = New(dev, nil, g, win(4, 1), 0)
	require.ErrorContains(t, err, "chunk size 0 must be positive")
}

func TestConstructionErrors(t *testing.T) {
	dev := gputest.Device(t)
	g := Geometry{Layers: 2, KVHeads: 2, HeadDim: 4}
	_, err := New(dev, nil, g, Spec{Kind: FreqKV, Size: 7, Sink: 4, Ratio: 0.3, Storage: engine.F32}, 1)
	require.EqualError(t, err, "kvcache: "+freqkv.Config{CacheSize: 7, Sink: 4, Ratio: 0.3}.Validate().(*freqkv.ConfigError).Msg)
	_, err = New(dev, nil, Geometry{Layers: 0, KVHeads: 2, HeadDim: 4}, DefaultSpec(FreqKV, 64, engine.F32), 1)
	require.ErrorContains(t, err, "must all be positive")
	_, err = New(dev, nil, Geometry{Layers: 1, KVHeads: 1, HeadDim: 3}, Spec{Kind: Full, Size: 8, Storage: engine.F16}, 1)
	require.ErrorContains(t, err, "f16 storage needs an even row width")
	_, err = New(dev, nil, Geometry{Layers: 1, KVHeads: 1, HeadDim: 4}, Spec{Kind: Full, Size: 8, Storage: engine.U32}, 1)
	require.ErrorContains(t, err, "use f32, f16, q8_0 or q4_0")

	// over the binding limit: the error says how many rows would fit
	big := Geometry{Layers: 1, KVHeads: 8, HeadDim: 128}
	fit := int(dev.MaxBinding() / (8 * 128 * 4))
	for _, kind := range Kinds() {
		spec := DefaultSpec(kind, fit+1, engine.F32)
		_, err = New(dev, nil, big, spec, 3)
		var le *DeviceLimitError
		require.ErrorAs(t, err, &le, "%v", kind)
		want := fit
		if kind == Window {
			want = fit - 2 // the ring holds size + chunk - 1 rows
		}
		require.Equal(t, want, le.MaxSize, "%v", kind)
		require.ErrorContains(t, err, "over the device's storage binding limit")
	}

	// several layers per binding: K and V of all layers of a small model share buffers
	p, err := New(dev, nil, g, DefaultSpec(FreqKV, 64, engine.F32), 1)
	require.NoError(t, err)
	defer p.Release()
	require.Same(t, p.K(0).Buf, p.V(1).Buf)
	require.Panics(t, func() { p.K(2) })
}

// TestSpreadCatchUpAfterPrefill: a prompt stored in one chunk leaves the spread sums
// behind; the decode steps before the compression must catch up on it, so the first
// compression is finished from the accumulator (not done whole, a stalling step) wherever
// the steps left allow it within the per-turn bound, and whole otherwise. Either way the
// rows match the reference cache.
func TestSpreadCatchUpAfterPrefill(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	g := Geometry{2, 2, 4} // 4 matrices: one per phase
	spec := Spec{Kind: FreqKV, Size: 256, Sink: 4, Ratio: 0.5, Storage: engine.F32}
	for _, c := range []struct {
		prompt   int
		finished bool
	}{{64, true}, {200, true}, {236, true}, {254, false}} {
		t.Run(fmt.Sprintf("prompt %d", c.prompt), func(t *testing.T) {
			p, err := New(dev, ops, g, spec, 1)
			require.NoError(t, err)
			defer p.Release()
			sp := p.(*freqKV).sp
			require.NotNil(t, sp, "the spread schedule")
			refs := make([]*freqkv.RefCache, g.Layers)
			for l := range refs {
				refs[l], err = freqkv.NewRefCache(spec.LayerFreqKV(l), g.Channels())
				require.NoError(t, err)
			}
			r := rand.New(rand.NewPCG(3, uint64(c.prompt)))
			step := func(n int) {
				rec := dev.NewRecorder()
				got, err := p.Next(rec, n)
				require.NoError(t, err)
				require.Equal(t, n, got)
				keys, values := make([][][]float64, g.Layers), make([][][]float64, g.Layers)
				for l := range keys {
					keys[l], values[l] = randRows(r, n, g.Channels()), randRows(r, n, g.Channels())
				}
				tmp := storeChunk(t, dev, ops, rec, p, g, keys, values)
				require.NoError(t, rec.SubmitAndWait())
				release(tmp)
				p.Commit(n)
				for l, ref := range refs {
					require.NoError(t, ref.Append(keys[l], values[l]))
				}
			}
			step(c.prompt)
			for p.Stats().Compressions == 0 {
				step(1)
			}
			if c.finished {
				require.Equal(t, 1, sp.writes, "the first compression after the prompt is finished from the accumulator")
			} else {
				require.Equal(t, 0, sp.writes, "too few steps to catch up: compressed whole")
			}
			for l, ref := range refs {
				rows := ref.Rows()
				e := max(relErr(t, readRows(t, p.K(l), rows), ref.Keys()), relErr(t, readRows(t, p.V(l), rows), ref.Values()))
				require.LessOrEqualf(t, e, 1e-5, "layer %d", l)
			}
		})
	}
}
