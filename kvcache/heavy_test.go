package kvcache

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/shaders"
	"github.com/stretchr/testify/require"
)

// refKeep is the eviction rule written out plainly (independently of SelectHeavy): pick
// the largest mass of the span m times (ties to the older row), then list the picks in
// row order, then the recent rows.
func refKeep(mass []float64, cfg freqkv.Config) []int {
	s, l := cfg.Sink, cfg.Span()
	taken := make([]bool, l)
	var kept []int
	for range cfg.Kept() {
		best := -1
		for i := range l {
			if !taken[i] && (best < 0 || mass[s+i] > mass[s+best]) {
				best = i
			}
		}
		taken[best] = true
	}
	for i := range l {
		if taken[i] {
			kept = append(kept, s+i)
		}
	}
	for j := range cfg.Recent {
		kept = append(kept, s+l+j)
	}
	return kept
}

func writeMass(t *testing.T, m *engine.Tensor, vals []float64) {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(v)))
	}
	require.NoError(t, m.Buf.Write(m.Offset, b))
}

func readMass(t *testing.T, m *engine.Tensor) []float64 {
	raw, err := m.Buf.Read(m.Offset, uint64(4*m.Rows*m.Cols))
	require.NoError(t, err)
	out := make([]float64, m.Rows*m.Cols)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
	}
	return out
}

// TestHeavyHitterEviction drives the h2o policy with random rows and, before every step,
// random distinct masses (standing in for accumulated attention); after each eviction
// every layer's K and V must be, head by head, exactly the rows the plain rule keeps (a
// copy: no rounding), and the masses must have moved with them.
func TestHeavyHitterEviction(t *testing.T) {
	dev := gputest.Device(t)
	ops := shaders.New(dev)
	for _, tc := range []struct {
		name     string
		g        Geometry
		spec     Spec
		tokens   int
		maxGroup int
	}{
		{"f32, recent rows, groups", Geometry{2, 2, 4}, Spec{Kind: HeavyHitter, Size: 24, Sink: 2, Recent: 3, Ratio: 0.5, Storage: engine.F32}, 120, 7},
		{"f16, token by token", Geometry{3, 2, 6}, Spec{Kind: HeavyHitter, Size: 20, Sink: 4, Ratio: 0.3, Storage: engine.F16}, 80, 1},
		{"f16 one head, no sinks, big groups", Geometry{1, 1, 8}, Spec{Kind: HeavyHitter, Size: 40, Ratio: 0.6, Recent: 5, Storage: engine.F16}, 200, 30},
		// quantised: compacted in f32 and quantised back, which with blocks inside one head
		// (head dim 32) gives back the same blocks, so the rows are still exact copies
		{"q8_0 head dim 32, groups", Geometry{2, 2, 32}, Spec{Kind: HeavyHitter, Size: 24, Sink: 2, Recent: 3, Ratio: 0.5, Storage: engine.Q8_0}, 100, 7},
		{"keys q4_0, values f16", Geometry{1, 2, 32}, Spec{Kind: HeavyHitter, Size: 20, Sink: 1, Ratio: 0.4, Storage: engine.Q4_0}.WithValueType(engine.F16), 80, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, uint64(tc.tokens)))
			p, err := New(dev, ops, tc.g, tc.spec, 64)
			require.NoError(t, err)
			defer p.Release()
			mt, ok := p.(MassTracker)
			require.True(t, ok)
			cfg := tc.spec.FreqKV()
			n, hd := tc.spec.Size, tc.g.HeadDim
			evictions := 0
			for done := 0; done < tc.tokens; {
				rows := p.View().Rows
				// masses: distinct random values on the rows in use, zero past them
				masses := make([][]float64, tc.g.Layers)
				for l := range masses {
					masses[l] = make([]float64, tc.g.KVHeads*n)
					for h := range tc.g.KVHeads {
						for i := range rows {
							masses[l][h*n+i] = float64(float32(r.Float64()*10 + float64(i)*1e-3))
						}
					}
					writeMass(t, mt.Mass(l), masses[l])
				}
				var beforeK, beforeV [][][]float64
				for l := range tc.g.Layers {
					beforeK = append(beforeK, readRows(t, p.K(l), n))
					beforeV = append(beforeV, readRows(t, p.V(l), n))
				}
				want := min(tc.tokens-done, 1+r.IntN(tc.maxGroup))
				rec := dev.NewRecorder()
				got, err := p.Next(rec, want)
				require.NoError(t, err)
				keys, values := make([][][]float64, tc.g.Layers), make([][][]float64, tc.g.Layers)
				for l := range keys {
					keys[l], values[l] = randRows(r, got, tc.g.Channels()), randRows(r, got, tc.g.Channels())
				}
				evicted := p.Stats().Compressions > evictions
				var afterK, afterV [][][]float64
				var afterMass [][]float64
				if evicted {
					// check the compaction alone, before the chunk's rows land
					require.NoError(t, rec.SubmitAndWait())
					for l := range tc.g.Layers {
						afterK = append(afterK, readRows(t, p.K(l), n))
						afterV = append(afterV, readRows(t, p.V(l), n))
						afterMass = append(afterMass, readMass(t, mt.Mass(l)))
					}
					rec = dev.NewRecorder()
				}
				tmp := storeChunk(t, dev, ops, rec, p, tc.g, keys, values)
				require.NoError(t, rec.SubmitAndWait())
				release(tmp)
				p.Commit(got)
				done += got
				if !evicted {
					continue
				}
				evictions++
				require.Equal(t, rows-cfg.Period(), p.View().Rows-got)
				for l := range tc.g.Layers {
					for h := range tc.g.KVHeads {
						kept := refKeep(masses[l][h*n:(h+1)*n], cfg)
						for i := range n {
							src := i // sinks stay
							if i >= cfg.Sink+len(kept) {
								break
							}
							if i >= cfg.Sink {
								src = kept[i-cfg.Sink]
							}
							require.Equal(t, beforeK[l][src][h*hd:(h+1)*hd], afterK[l][i][h*hd:(h+1)*hd], "layer %d head %d row %d (from %d)", l, h, i, src)
							require.Equal(t, beforeV[l][src][h*hd:(h+1)*hd], afterV[l][i][h*hd:(h+1)*hd], "layer %d head %d row %d (from %d)", l, h, i, src)
							require.Equal(t, masses[l][h*n+src], afterMass[l][h*n+i])
						}
						for i := cfg.Sink + len(kept); i < n; i++ {
							require.Zero(t, afterMass[l][h*n+i])
						}
					}
				}
			}
			require.Greater(t, evictions, 2)
			require.Equal(t, evictions, p.Stats().Compressions)
			p.Reset()
			require.Zero(t, p.Stats().Rows)
			require.True(t, slices.Equal(readMass(t, mt.Mass(0)), make([]float64, tc.g.KVHeads*n)))
		})
	}
}

func TestSelectHeavy(t *testing.T) {
	cfg := freqkv.Config{CacheSize: 10, Sink: 1, Recent: 2, Ratio: 0.5} // L = 7, m = 3
	mass := []float32{9, 1, 5, 5, 0, 7, 2, 3, 4, 4}
	idx, next := SelectHeavy(mass, 1, cfg)
	require.Equal(t, []int{2, 3, 5, 8, 9}, idx) // 7, then the tie 5/5, then recent 8, 9
	require.Equal(t, []float32{9, 5, 5, 7, 4, 4, 0, 0, 0, 0}, next)
}

// Saving what the state format cannot hold (h2o's masses, per-layer row counts) is an
// error, never a state that would resume differently.
func TestStateRefusesH2OAndPerLayer(t *testing.T) {
	dev := gputest.Device(t)
	for _, spec := range []Spec{
		DefaultSpec(HeavyHitter, 16, engine.F32),
		{Kind: FreqKV, Size: 16, Sink: 2, Ratios: []float64{0.5, 0.25}, Storage: engine.F32},
	} {
		p, err := New(dev, nil, Geometry{2, 1, 4}, spec, 8)
		require.NoError(t, err)
		_, err = SaveState(p)
		require.Error(t, err, "%v", spec.Kind)
		p.Release()
	}
}
