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
	most := 0
	for _, n := range s.counts {
		most = max(most, n)
	}
	elems := shaders.CompressScratch(f.params(most), 0)
	f.scratch, err = dev.NewTensor("freqkv compression scratch", engine.F32, 1, elems)
	if err != nil {
		s.release()
		return nil, fmt.Errorf("kvcache: freqkv scratch: %w", err)
	}
	for i := range s.arenas {
		if err := ops.PrepareCompress(s.arena(i), f.scratch, f.params(s.counts[i])); err != nil {
			f.Release()
			return nil, fmt.Errorf("kvcache: freqkv: %w", err)
		}
	}
	return f, nil
}

// params is the compression of n matrices of an arena.
func (f *freqKV) params(n int) shaders.CompressParams {
	return shaders.CompressParams{Sink: f.cfg.Sink, Span: f.cfg.Span(), Kept: f.cfg.Kept(), Recent: f.cfg.Recent,
		Channels: f.s.g.Channels(), Batches: n, BatchStride: f.s.stride}
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
			if err := f.ops.Compress(rec, f.s.arena(i), f.scratch, f.params(f.s.counts[i])); err != nil {
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
	if f.scratch != nil {
		f.scratch.Release()
		f.scratch = nil
	}
	if f.ownOps {
		f.ops.Release()
	}
}
