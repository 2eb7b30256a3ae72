package kvcache

import (
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

// quantRow is ggml's reference quantiser (quantize_row_q8_0_ref / q4_0_ref, whose
// arithmetic is float32) followed by dequantisation, written here from the ggml rules and
// sharing nothing with the shaders: the values a q8_0 or q4_0 cache holds for row x.
func quantRow(x []float64, t engine.DType) []float64 {
	out := make([]float64, len(x))
	for b := 0; b < len(x); b += 32 {
		var amax, mx float32
		for _, v := range x[b : b+32] {
			if a := float32(math.Abs(v)); a > amax {
				amax, mx = a, float32(v)
			}
		}
		d := amax / 127
		if t == engine.Q4_0 {
			d = mx / -8
		}
		var id float32
		if d != 0 {
			id = 1 / d
		}
		d16 := float64(ggml.F16ToF32(ggml.F32ToF16(d)))
		for j, v := range x[b : b+32] {
			y := float32(v) * id
			if t == engine.Q8_0 {
				q := math.Floor(math.Abs(float64(y)) + 0.5)
				out[b+j] = math.Copysign(q, float64(y)) * d16
			} else {
				q := min(15, math.Trunc(float64(y+8.5)))
				out[b+j] = (q - 8) * d16
			}
		}
	}
	return out
}

func quantRows(rows [][]float64, t engine.DType) [][]float64 {
	if !shaders.IsQuantKV(t) {
		return rows
	}
	out := make([][]float64, len(rows))
	for i, r := range rows {
		out[i] = quantRow(r, t)
	}
	return out
}

// quantRef is a float64 FreqKV cache (freqkv.Compress) that stores its rows as a quantised
// cache does: rounded to the storage type on append and again after each compression.
type quantRef struct {
	cfg          freqkv.Config
	kt, vt       engine.DType
	keys, values [][]float64
}

func (r *quantRef) append(k, v [][]float64) {
	r.keys = append(r.keys, quantRows(k, r.kt)...)
	r.values = append(r.values, quantRows(v, r.vt)...)
}

func (r *quantRef) compress(t *testing.T) {
	c := len(r.keys[0])
	for _, m := range []struct {
		rows *[][]float64
		dt   engine.DType
	}{{&r.keys, r.kt}, {&r.values, r.vt}} {
		rows := *m.rows
		s, l, kept := r.cfg.Sink, r.cfg.Span(), r.cfg.Kept()
		flat := make([]float64, 0, l*c)
		for _, row := range rows[s : s+l] {
			flat = append(flat, row...)
		}
		y, err := freqkv.Compress(flat, l, c, kept)
		require.NoError(t, err)
		next := append([][]float64(nil), rows[:s]...)
		var moved [][]float64
		for i := 0; i < kept; i++ {
			moved = append(moved, y[i*c:(i+1)*c])
		}
		moved = append(moved, rows[s+l:]...)
		// the GPU quantises the compressed rows and the recent rows it moved
		*m.rows = append(next, quantRows(moved, m.dt)...)
	}
}

// blockErr compares got with want block by block in units of the block's quantisation
// step (its largest |want| / 127 for q8_0, / 8 for q4_0; 2^-11 of it for f16, 1e-5 for f32): the
// largest error, and how many quantised values differ by more than 1e-3 step.
func blockErr(got, want [][]float64, t engine.DType) (worst float64, off int) {
	div := map[engine.DType]float64{engine.Q8_0: 127, engine.Q4_0: 8}[t]
	for i := range want {
		for b := 0; b < len(want[i]); b += 32 {
			hi := min(b+32, len(want[i]))
			step := 0.0
			for _, v := range want[i][b:hi] {
				step = max(step, math.Abs(v))
			}
			if t == engine.F16 {
				step *= math.Pow(2, -11) // half an f16 ulp of the block's largest value
			} else if div == 0 {
				step *= 1e-5 // f32 storage: the f32 FFT's rounding
			} else {
				step /= div
			}
			step = max(step, 1e-30)
			for j := b; j < hi; j++ {
				e := math.Abs(got[i][j]-want[i][j]) / step
				if math.IsNaN(e) {
					e = math.Inf(1)
				}
				worst = max(worst, e)
				if div != 0 && e > 1e-3 {
					off++
				}
			}
		}
	}
	return worst, off
}

// TestQuantFreqKVCacheEvolution runs quantised (and mixed) FreqKV caches through many
// compressions, token by token and in groups, against quantRef.
//
// Tolerance, from the block rounding: the GPU and the reference quantise with the same f32
// arithmetic, so stored rows agree exactly; a compression's f32 FFT differs from the
// float64 DCT by ~1e-6 relative, so a requantised value whose x/d lies that close to a
// rounding boundary takes the neighbouring code (one step), and that difference then rides
// through later compressions (which mix rows with weights below 1). So: every value within
// 2 steps of its block, and at most 1% of values off by more than 1e-3 step.
func TestQuantFreqKVCacheEvolution(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	q8, q4, f16 := engine.Q8_0, engine.Q4_0, engine.F16
	for _, tc := range []struct {
		name     string
		g        Geometry
		spec     Spec
		tokens   int
		maxGroup int
	}{
		{"q8_0 stories260K shape (4 heads x 8), token by token", Geometry{2, 4, 8}, Spec{Kind: FreqKV, Size: 24, Sink: 2, Recent: 3, Ratio: 0.5, Storage: q8}, 90, 1},
		{"q4_0 head dim 32, groups", Geometry{3, 1, 32}, Spec{Kind: FreqKV, Size: 40, Sink: 4, Ratio: 0.3, Storage: q4}, 200, 25},
		{"keys q8_0, values f16, groups", Geometry{2, 2, 16}, Spec{Kind: FreqKV, Size: 30, Sink: 1, Recent: 5, Ratio: 0.5, Storage: q8}.WithValueType(f16), 150, 9},
		{"keys f32, values q4_0, bluestein span 67", Geometry{1, 1, 64}, Spec{Kind: FreqKV, Size: 70, Sink: 1, Recent: 2, Ratio: 0.5, Storage: engine.F32}.WithValueType(q4), 150, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(21, uint64(tc.tokens)))
			p, err := New(dev, ops, tc.g, tc.spec, 1)
			require.NoError(t, err)
			defer p.Release()
			want, err := tc.g.SpecBytes(tc.spec, tc.spec.Size)
			require.NoError(t, err)
			require.GreaterOrEqual(t, p.Stats().Bytes, want)
			// beyond the rows only alignment padding: up to 255 bytes' worth of rows per matrix
			// (128 rows of a 34-byte q8_0 row)
			require.LessOrEqual(t, p.Stats().Bytes, want+int64(2*tc.g.Layers*256*4*tc.g.Channels()), "only alignment padding beyond the rows")
			ref := make([]*quantRef, tc.g.Layers)
			for l := range ref {
				ref[l] = &quantRef{cfg: tc.spec.FreqKV(), kt: tc.spec.KeyType(), vt: tc.spec.ValueType()}
			}
			memory := dev.AllocatedBytes()
			worst, off, total := 0.0, 0, 0
			compare := func() {
				for l, rf := range ref {
					rows := len(rf.keys)
					require.Equal(t, rows, p.View().Rows)
					for _, c := range []struct {
						got  [][]float64
						want [][]float64
						dt   engine.DType
					}{{readRows(t, p.K(l), rows), rf.keys, tc.spec.KeyType()}, {readRows(t, p.V(l), rows), rf.values, tc.spec.ValueType()}} {
						w, o := blockErr(c.got, c.want, c.dt)
						require.LessOrEqualf(t, w, 2.0, "layer %d after %d tokens (%v): %.3g steps", l, p.Stats().Tokens, c.dt, w)
						worst, off, total = max(worst, w), off+o, total+rows*tc.g.Channels()
					}
				}
			}
			for done := 0; done < tc.tokens; {
				wantN := min(tc.tokens-done, 1+r.IntN(tc.maxGroup))
				rec := dev.NewRecorder()
				before := p.Stats().Compressions
				n, err := p.Next(rec, wantN)
				require.NoError(t, err)
				if p.Stats().Compressions != before {
					for _, rf := range ref {
						rf.compress(t)
					}
				}
				keys, values := make([][][]float64, tc.g.Layers), make([][][]float64, tc.g.Layers)
				for l := range keys {
					keys[l], values[l] = randRows(r, n, tc.g.Channels()), randRows(r, n, tc.g.Channels())
				}
				tmp := storeChunk(t, dev, ops, rec, p, tc.g, keys, values)
				require.NoError(t, rec.SubmitAndWait())
				release(tmp)
				p.Commit(n)
				for l, rf := range ref {
					rf.append(keys[l], values[l])
				}
				done += n
				if p.Stats().Compressions != before || done == tc.tokens {
					compare()
				}
			}
			require.Greater(t, p.Stats().Compressions, 1)
			require.Equal(t, memory, dev.AllocatedBytes(), "device memory grew after construction")
			require.LessOrEqualf(t, float64(off), 0.01*float64(total), "%d of %d values off by more than 1e-3 step", off, total)
			t.Logf("%d compressions; largest error %.3g steps; %d of %d values off by more than 1e-3 step", p.Stats().Compressions, worst, off, total)
		})
	}
}

// TestQuantAttention runs the attention of every query over quantised full, window and
// FreqKV caches against freqkv.RefAttention over the rows quantRef holds. Full and window
// caches store rows the reference rounds with the same f32 arithmetic, so they get the
// f32 tolerance; a FreqKV cache's requantised rows may take a neighbouring code (see
// TestQuantFreqKVCacheEvolution), which the softmax passes on: 2e-2 of the largest output
// for q8_0, 1e-1 for q4_0 (one code step of one key moves a score by the step times |q|).
func TestQuantAttention(t *testing.T) {
	dev := gputest.Device(t)
	for _, c := range []struct {
		g  Geometry
		dt engine.DType
	}{
		{Geometry{Layers: 1, KVHeads: 4, HeadDim: 8}, engine.Q8_0}, // stories260K's shape: blocks span 4 heads
		{Geometry{Layers: 1, KVHeads: 4, HeadDim: 8}, engine.Q4_0},
		// the vectorised kernel (head dim 16), on a window ring of 17 rows of 34 bytes: the
		// matrix does not end on a 16-byte word
		{Geometry{Layers: 1, KVHeads: 2, HeadDim: 16}, engine.Q8_0},
	} {
		g, dt := c.g, c.dt
		for _, spec := range []Spec{
			{Kind: Full, Size: 40, Storage: dt},
			{Kind: Window, Size: 12, Sink: 2, Storage: dt},
			{Kind: FreqKV, Size: 40, Sink: 4, Recent: 2, Ratio: 0.5, Storage: dt},
		} {
			t.Run(fmt.Sprintf("%v_%v_hd%d", spec.Kind, dt, g.HeadDim), func(t *testing.T) {
				p, err := New(dev, nil, g, spec, 6)
				require.NoError(t, err)
				defer p.Release()
				ref := &quantRef{cfg: spec.FreqKV(), kt: dt, vt: dt}
				compressions := 0
				tol := 1e-4
				if spec.Kind == FreqKV {
					tol = map[engine.DType]float64{engine.Q8_0: 2e-2, engine.Q4_0: 1e-1}[dt]
				}
				seen := func(row int) ([][]float64, [][]float64) {
					if spec.Kind != Window {
						return ref.keys[:row+1], ref.values[:row+1]
					}
					lo := max(spec.Sink, row+1-(spec.Size-spec.Sink))
					var ks, vs [][]float64
					for j := 0; j < min(spec.Sink, row+1); j++ {
						ks, vs = append(ks, ref.keys[j]), append(vs, ref.values[j])
					}
					for j := lo; j <= row; j++ {
						ks, vs = append(ks, ref.keys[j]), append(vs, ref.values[j])
					}
					return ks, vs
				}
				tokens := 40
				if spec.Kind != Full {
					tokens = 150
				}
				worst := runAttention(t, dev, p, g, 8, tokens, 6, tol, rand.New(rand.NewPCG(22, 23)),
					func(k, v [][]float64) {
						if spec.Kind == FreqKV && p.Stats().Compressions != compressions {
							ref.compress(t)
							compressions = p.Stats().Compressions
						}
						ref.append(k, v)
					}, seen)
				if spec.Kind == FreqKV {
					require.GreaterOrEqual(t, p.Stats().Compressions, 4)
				}
				t.Logf("largest relative error %.3g (tolerance %.3g)", worst, tol)
			})
		}
	}
}

// TestQuantGeometry: which head dims a quantised cache takes, errors with the sizes.
func TestQuantGeometry(t *testing.T) {
	dev := gputest.Device(t)
	for _, tc := range []struct {
		g    Geometry
		k, v engine.DType
		err  string
		p    Param
	}{
		{Geometry{1, 4, 8}, engine.Q8_0, engine.Q8_0, "", ""},  // stories260K: a block is 4 heads
		{Geometry{1, 4, 16}, engine.Q4_0, engine.Q4_0, "", ""}, // TinyStories-656K
		{Geometry{1, 2, 64}, engine.Q4_0, engine.F16, "", ""},
		{Geometry{1, 2, 48}, engine.Q8_0, engine.Q8_0, "q8_0 storage quantises blocks of 32 channels; head dim 48 is not a multiple of 32 (2 KV heads x 48), so a block would straddle two heads; use f16", ParamStorage},
		{Geometry{1, 3, 8}, engine.F16, engine.Q4_0, "q4_0 storage quantises blocks of 32 channels; head dim 8 is below a block and 3 KV heads x 8 = 24 channels are not whole blocks; use f16", ParamValueStorage},
		{Geometry{1, 1, 80}, engine.Q4_0, engine.Q4_0, "head dim 80 is not a multiple of 32", ParamStorage},
	} {
		spec := Spec{Kind: Full, Size: 8, Storage: tc.k}.WithValueType(tc.v)
		p, err := New(dev, nil, tc.g, spec, 1)
		if tc.err == "" {
			require.NoError(t, err, "%+v", tc.g)
			p.Release()
			continue
		}
		var se *SpecError
		require.ErrorAs(t, err, &se, "%+v", tc.g)
		require.Equal(t, []Param{tc.p}, se.Params)
		require.ErrorContains(t, err, tc.err)
	}
	require.ErrorContains(t, Spec{Kind: Full, Size: 8, Storage: engine.F16}.WithValueType(engine.U32).Validate(), "KV value storage u32 is not supported")
}
