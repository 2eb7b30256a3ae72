package kvcache

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/shaders"
)

// freqKV is the FreqKV cache (docs/freqkv.md): N rows per layer; when full and another token
// needs a row, rows [S, S+L) of every layer's K and V are compressed into m rows, the R
// recent rows move up behind them, and the next Period() = L-m tokens get rows. Row i
// has position i, so positions stay below N.
//
// With per-layer geometry (Spec.Ratios, Spec.Sizes) each layer follows its own plan: it
// compresses when its own N rows are full, and a step takes as many tokens as every layer
// has room for; storage has the largest N rows per layer.
type freqKV struct {
	ops          *shaders.Ops
	ownOps       bool // made here, so released here
	cfg          freqkv.Config
	layers       []freqkv.Config // per-layer geometry; nil when every layer has cfg
	lrows        []int           // rows of each layer (per-layer geometry only)
	s            *store
	scratch      *engine.Tensor
	staging      *engine.Tensor // f32 spans of quantised matrices (quant.go); nil without
	perPass      int            // quantised matrices compressed per staging pass
	rows         int
	compressions int
	c            committer
}

// newFreqKV returns a FreqKV cache: Cap = Size rows per layer, compressed as
// freqkv.Config.Plan says. It compiles the compression kernels and uploads their tables
// now, so the first compression neither stalls nor allocates.
func newFreqKV(dev *engine.Device, ops *shaders.Ops, g Geometry, spec Spec) (Policy, error) {
	cfg := spec.FreqKV()
	own := ops == nil
	if own {
		ops = shaders.New(dev)
	}
	s, err := newStore(dev, g, spec, 0)
	if err != nil {
		return nil, err
	}
	f := &freqKV{ops: ops, ownOps: own, cfg: cfg, s: s}
	if spec.PerLayer() {
		for l := range g.Layers {
			f.layers = append(f.layers, spec.LayerFreqKV(l))
		}
		f.lrows = make([]int, g.Layers)
	}
	if err := f.allocWork(dev); err != nil {
		f.Release()
		return nil, err
	}
	if f.layers != nil {
		for l := range f.layers {
			for _, m := range []*engine.Tensor{s.k(l), s.v(l)} {
				if err := f.compressMatrices(nil, m, 1, s.cap, f.layerParams(l)); err != nil {
					f.Release()
					return nil, fmt.Errorf("kvcache: freqkv: layer %d: %w", l, err)
				}
			}
		}
		return f, nil
	}
	for i := range s.arenas {
		if err := f.compressArena(nil, i); err != nil {
			f.Release()
			return nil, fmt.Errorf("kvcache: freqkv: %w", err)
		}
	}
	return f, nil
}

// layerParams is the compression of one matrix (K or V) of layer l's own geometry.
func (f *freqKV) layerParams(l int) shaders.CompressParams {
	c := f.layers[l]
	return shaders.CompressParams{Sink: c.Sink, Span: c.Span(), Kept: c.Kept(), Recent: c.Recent,
		Channels: f.s.g.Channels(), Batches: 1, BatchStride: f.s.cap,
		KeepHigh: c.Keep == freqkv.KeepHigh, EnergyScale: c.Scale == freqkv.ScaleEnergy}
}

// nextPerLayer is Next with per-layer geometry: each layer compresses when its plan says,
// and the step takes what every layer has room for.
func (f *freqKV) nextPerLayer(rec *engine.Recorder, n int) (int, error) {
	allowed, compressed := n, false
	for l, c := range f.layers {
		steps, err := c.Plan(f.lrows[l], n)
		if err != nil {
			return 0, fmt.Errorf("kvcache: layer %d: %w", l, err)
		}
		if steps[0].Kind == freqkv.StepCompress {
			for _, m := range []*engine.Tensor{f.s.k(l), f.s.v(l)} {
				if err := f.compressMatrices(rec, m, 1, f.s.cap, f.layerParams(l)); err != nil {
					return 0, fmt.Errorf("kvcache: freqkv compression of layer %d: %w", l, err)
				}
			}
			f.lrows[l] -= steps[0].Rows
			compressed = true
			steps = steps[1:]
		}
		allowed = min(allowed, steps[0].Rows)
	}
	if compressed {
		f.compressions++
	}
	f.rows = 0
	for _, r := range f.lrows {
		f.rows = max(f.rows, r)
	}
	f.c.allowed = allowed
	return allowed, nil
}

// params is the compression of n matrices stride rows apart.
func (f *freqKV) params(n, stride int) shaders.CompressParams {
	return shaders.CompressParams{Sink: f.cfg.Sink, Span: f.cfg.Span(), Kept: f.cfg.Kept(), Recent: f.cfg.Recent,
		Channels: f.s.g.Channels(), Batches: n, BatchStride: stride,
		KeepHigh: f.cfg.Keep == freqkv.KeepHigh, EnergyScale: f.cfg.Scale == freqkv.ScaleEnergy}
}

// allocWork allocates the compression's f32 scratch, and the staging of quantised matrices.
func (f *freqKV) allocWork(dev *engine.Device) error {
	elems, quantMost := 0, 0
	for _, a := range f.s.arenas {
		if shaders.IsQuantKV(a.dtype) {
			quantMost = max(quantMost, a.count)
		} else if f.layers == nil {
			elems = max(elems, shaders.CompressScratch(f.params(a.count, a.stride), 0))
		}
	}
	quant := quantMost > 0
	for l := range f.layers {
		if !quant || !shaders.IsQuantKV(f.s.spec.KeyType()) || !shaders.IsQuantKV(f.s.spec.ValueType()) {
			elems = max(elems, shaders.CompressScratch(f.layerParams(l), 0))
		}
	}
	if quant {
		if f.layers != nil {
			quantMost = 1 // per-layer geometry compresses one matrix at a time
		}
		f.perPass = stagingMatrices(f.s.bytes, f.stagingRows(), f.s.g.Channels(), quantMost)
		var err error
		f.staging, err = dev.NewTensor("freqkv quantised span staging", engine.F32, f.perPass*f.stagingRows(), f.s.g.Channels())
		if err != nil {
			return fmt.Errorf("kvcache: freqkv staging: %w", err)
		}
		if f.layers == nil {
			elems = max(elems, shaders.CompressScratch(stagingParams(f.params(f.perPass, 0)), 0))
		}
		for l := range f.layers {
			elems = max(elems, shaders.CompressScratch(stagingParams(f.layerParams(l)), 0))
		}
	}
	var err error
	f.scratch, err = dev.NewTensor("freqkv compression scratch", engine.F32, 1, elems)
	if err != nil {
		return fmt.Errorf("kvcache: freqkv scratch: %w", err)
	}
	return nil
}

// compressArena records the compression of arena i's matrices (rec nil: compiles its
// kernels and uploads its tables only).
func (f *freqKV) compressArena(rec *engine.Recorder, i int) error {
	a := f.s.arenas[i]
	return f.compressMatrices(rec, f.s.arena(i), a.count, a.stride, f.params(a.count, a.stride))
}

// compressMatrices records the compression p of the n matrices of t, stride rows apart, in
// place (f32, f16) or through the staging (q8_0, q4_0); rec nil: prepares only.
func (f *freqKV) compressMatrices(rec *engine.Recorder, t *engine.Tensor, n, stride int, p shaders.CompressParams) error {
	if shaders.IsQuantKV(t.DType) {
		return f.compressQuant(rec, t, n, stride, p)
	}
	if rec == nil {
		return f.ops.PrepareCompress(t, f.scratch, p)
	}
	return f.ops.Compress(rec, t, f.scratch, p)
}

func (f *freqKV) Spec() Spec { return f.s.spec }
func (f *freqKV) Room() int  { return Unbounded }

func (f *freqKV) Next(rec *engine.Recorder, n int) (int, error) {
	if err := checkNext(n); err != nil {
		return 0, err
	}
	if f.layers != nil {
		return f.nextPerLayer(rec, n)
	}
	steps, err := f.cfg.Plan(f.rows, n)
	if err != nil {
		return 0, fmt.Errorf("kvcache: %w", err)
	}
	if steps[0].Kind == freqkv.StepCompress {
		for i := range f.s.arenas {
			if err := f.compressArena(rec, i); err != nil {
				return 0, fmt.Errorf("kvcache: freqkv compression: %w", err)
			}
		}
		f.rows -= steps[0].Rows
		f.compressions++
		steps = steps[1:]
	}
	f.c.allowed = steps[0].Rows
	return f.c.allowed, nil
}

func (f *freqKV) Commit(n int) {
	f.c.commit(n)
	f.rows += n
	for l := range f.lrows {
		f.lrows[l] += n
	}
	if f.lrows != nil {
		f.rows = 0
		for _, r := range f.lrows {
			f.rows = max(f.rows, r)
		}
	}
}

func (f *freqKV) View() View { return View{Rows: f.rows, Cap: f.cfg.CacheSize} }

func (f *freqKV) LayerView(l int) View {
	if f.layers == nil {
		return f.View()
	}
	return View{Rows: f.lrows[f.s.layer(l)], Cap: f.layers[l].CacheSize}
}

func (f *freqKV) K(layer int) *engine.Tensor { return f.s.k(layer) }
func (f *freqKV) V(layer int) *engine.Tensor { return f.s.v(layer) }
func (f *freqKV) MaxPosition() int           { return f.cfg.CacheSize }

func (f *freqKV) Stats() Stats {
	return Stats{Rows: f.rows, Compressions: f.compressions, Tokens: f.c.tokens, Bytes: f.s.bytes}
}

func (f *freqKV) Reset() {
	f.rows, f.compressions = 0, 0
	for l := range f.lrows {
		f.lrows[l] = 0
	}
	f.c = committer{}
}

func (f *freqKV) Release() {
	f.s.release()
	for _, t := range []**engine.Tensor{&f.scratch, &f.staging} {
		if *t != nil {
			(*t).Release()
			*t = nil
		}
	}
	if f.ownOps {
		f.ops.Release()
	}
}
