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
type freqKV struct {
	ops          *shaders.Ops
	ownOps       bool // made here, so released here
	cfg          freqkv.Config
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
	if err := f.allocWork(dev); err != nil {
		f.Release()
		return nil, err
	}
	for i := range s.arenas {
		if err := f.compressArena(nil, i); err != nil {
			f.Release()
			return nil, fmt.Errorf("kvcache: freqkv: %w", err)
		}
	}
	return f, nil
}

// params is the compression of n matrices stride rows apart.
func (f *freqKV) params(n, stride int) shaders.CompressParams {
	return shaders.CompressParams{Sink: f.cfg.Sink, Span: f.cfg.Span(), Kept: f.cfg.Kept(), Recent: f.cfg.Recent,
		Channels: f.s.g.Channels(), Batches: n, BatchStride: stride}
}

// allocWork allocates the compression's f32 scratch, and the staging of quantised arenas.
func (f *freqKV) allocWork(dev *engine.Device) error {
	elems := 0
	quantMost := 0
	for _, a := range f.s.arenas {
		if shaders.IsQuantKV(a.dtype) {
			quantMost = max(quantMost, a.count)
			continue
		}
		elems = max(elems, shaders.CompressScratch(f.params(a.count, a.stride), 0))
	}
	if quantMost > 0 {
		f.perPass = stagingMatrices(f.s.bytes, f.stagingRows(), f.s.g.Channels(), quantMost)
		var err error
		f.staging, err = dev.NewTensor("freqkv quantised span staging", engine.F32, f.perPass*f.stagingRows(), f.s.g.Channels())
		if err != nil {
			return fmt.Errorf("kvcache: freqkv staging: %w", err)
		}
		elems = max(elems, shaders.CompressScratch(f.stagingParams(f.perPass), 0))
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
	if shaders.IsQuantKV(a.dtype) {
		return f.compressQuant(rec, i)
	}
	if rec == nil {
		return f.ops.PrepareCompress(f.s.arena(i), f.scratch, f.params(a.count, a.stride))
	}
	return f.ops.Compress(rec, f.s.arena(i), f.scratch, f.params(a.count, a.stride))
}

func (f *freqKV) Spec() Spec { return f.s.spec }
func (f *freqKV) Room() int  { return Unbounded }

func (f *freqKV) Next(rec *engine.Recorder, n int) (int, error) {
	if err := checkNext(n); err != nil {
		return 0, err
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
}

func (f *freqKV) View() View                 { return View{Rows: f.rows, Cap: f.cfg.CacheSize} }
func (f *freqKV) K(layer int) *engine.Tensor { return f.s.k(layer) }
func (f *freqKV) V(layer int) *engine.Tensor { return f.s.v(layer) }
func (f *freqKV) MaxPosition() int           { return f.cfg.CacheSize }

func (f *freqKV) Stats() Stats {
	return Stats{Rows: f.rows, Compressions: f.compressions, Tokens: f.c.tokens, Bytes: f.s.bytes}
}

func (f *freqKV) Reset() {
	f.rows, f.compressions = 0, 0
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
