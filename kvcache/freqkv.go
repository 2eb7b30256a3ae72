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
	sp           *spread // nil: every compression is done whole when needed
}

// Schedule says when a FreqKV cache does a compression's work. Either way the rows are
// those of FREQKV.md; only the order of float32 sums differs.
type Schedule uint8

const (
	// Spread (the default) accumulates each span row's share of the next compression a
	// few rows per step as rows arrive (shaders.SpreadAccumulate), so the step that
	// compresses only writes the result: no decode step stalls for the whole compression.
	// It falls back to Whole for a compression whose rows arrived in large chunks
	// (prefill), and altogether where it does not fit (SpreadFits).
	Spread Schedule = iota
	// Whole compresses every layer in the step that needs it (shaders.Compress, FFT).
	Whole
)

// spread is the state of Spread. The matrices (K and V of every layer) are split into
// phases that take turns, one phase a step, so each step updates a fraction of the
// accumulator with several rows at once rather than all of it with one or two rows (the
// accumulator's read-modify-write is most of the cost). acc (one per arena) holds, for
// the matrices of phase i, the shares of span rows [0, done[i]) of the compression to come.
type spread struct {
	table  *engine.Tensor   // f32 [L][m]
	accs   []*engine.Tensor // f32 [matrices][m][C] per arena
	phases [][2]int         // matrix ranges [first, end), counted over all arenas
	done   []int
	turn   int // the phase of the next step
	budget int // span rows a phase takes per turn at most, short of catching up
	writes int // compressions written out from acc (tests)
}

// spreadPhases is how many phases the matrices are split into (at most).
const spreadPhases = 4

// maxSpreadTable bounds the [L][m] table of a spread compression.
const maxSpreadTable = 64 << 20

// SpreadFits says whether a cache of this geometry and configuration can spread its
// compressions: channels a multiple of 4 and an m x L table of at most 64 MiB (caches
// up to about 5.8K rows at ratio 0.5).
func SpreadFits(dev *engine.Device, g Geometry, cfg freqkv.Config) bool {
	l, m := cfg.Span(), cfg.Kept()
	tb := shaders.SpreadTableBytes(l, m)
	return g.Channels()%4 == 0 && m < l && tb <= maxSpreadTable && tb <= dev.MaxBinding() &&
		uint64(2*g.Layers*m*g.Channels())*4 <= dev.MaxBinding()
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
	// The spread schedule tables the method's compression (low frequencies, amplitude
	// scale), one geometry for every layer; the ablations and per-layer plans compress whole.
	if spec.Compress == Spread && !shaders.IsQuantKV(spec.KeyType()) && !shaders.IsQuantKV(spec.ValueType()) && cfg.Keep == freqkv.KeepLow && cfg.Scale == freqkv.ScaleAmplitude && SpreadFits(dev, g, cfg) {
		if err := f.newSpread(dev); err != nil {
			f.Release()
			return nil, fmt.Errorf("kvcache: freqkv: %w", err)
		}
	}
	return f, nil
}

func (f *freqKV) newSpread(dev *engine.Device) error {
	l, m := f.cfg.Span(), f.cfg.Kept()
	table, err := shaders.SpreadTable(l, m)
	if err != nil {
		return err
	}
	// Each phase must take a row per step and catch up on the m+R rows a
	// compression leaves before the next one, Period() steps later.
	total := 2 * f.s.g.Layers
	np := min(spreadPhases, total)
	sp := &spread{budget: np * (ceilDiv(m+f.cfg.Recent, f.cfg.Period()) + 1), done: make([]int, np)}
	for i := range np {
		sp.phases = append(sp.phases, [2]int{i * total / np, (i + 1) * total / np})
	}
	f.sp = sp
	if sp.table, err = dev.NewTensor("freqkv spread table", engine.F32, l, m); err != nil {
		return err
	}
	if err := sp.table.UploadF32(table); err != nil {
		return err
	}
	for i, a := range f.s.arenas {
		n := a.count
		acc, err := dev.NewTensor(fmt.Sprintf("freqkv spread acc %d", i), engine.F32, n*m, f.s.g.Channels())
		if err != nil {
			return err
		}
		sp.accs = append(sp.accs, acc)
		if err := f.ops.PrepareSpread(f.s.arena(i), sp.table, acc, f.params(n, a.stride)); err != nil {
			return err
		}
	}
	return nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// eachArena calls fn with the part of matrices [lo, hi) (counted over all arenas) in
// arena i, as a first matrix and a count within it, for every arena holding some.
func (f *freqKV) eachArena(lo, hi int, fn func(i, first, count int) error) error {
	start := 0 // arena i's first matrix
	for i, ar := range f.s.arenas {
		count := ar.count
		if a, b := max(lo, start), min(hi, start+count); a < b {
			if err := fn(i, a-start, b-a); err != nil {
				return fmt.Errorf("kvcache: freqkv spread compression: %w", err)
			}
		}
		start += count
	}
	return nil
}

// accumulate records the shares of span rows [done, done+n) of phase ph's matrices.
func (f *freqKV) accumulate(rec *engine.Recorder, ph, n int) error {
	sp := f.sp
	j0, r := sp.done[ph], sp.phases[ph]
	sp.done[ph] += n
	return f.eachArena(r[0], r[1], func(i, first, count int) error {
		return f.ops.SpreadAccumulate(rec, f.s.arena(i), sp.table, sp.accs[i], f.arenaParams(i), first, count, j0, n)
	})
}

// compress records the compression a full cache needs: finished from the accumulator
// when every phase holds the shares of at least m span rows and lags by at most a turn's
// budget (decode), else whole (the rows came in large chunks).
func (f *freqKV) compress(rec *engine.Recorder) error {
	sp := f.sp
	l, m := f.cfg.Span(), f.cfg.Kept()
	finish := sp != nil
	if sp != nil {
		for _, d := range sp.done {
			finish = finish && d >= m && l-d <= sp.budget
		}
	}
	if finish {
		for ph, r := range sp.phases {
			if err := f.eachArena(r[0], r[1], func(i, first, count int) error {
				return f.ops.SpreadFinish(rec, f.s.arena(i), sp.table, sp.accs[i], f.arenaParams(i), first, count, sp.done[ph])
			}); err != nil {
				return err
			}
		}
		if err := f.eachArena(0, 2*f.s.g.Layers, func(i, _, _ int) error {
			return f.ops.SpreadMoveRecent(rec, f.s.arena(i), sp.accs[i], f.arenaParams(i))
		}); err != nil {
			return err
		}
		clear(sp.done)
		sp.writes++
		return nil
	}
	for i := range f.s.arenas {
		if err := f.compressArena(rec, i); err != nil {
			return fmt.Errorf("kvcache: freqkv compression: %w", err)
		}
	}
	if sp != nil {
		clear(sp.done) // the next shares start new sums
	}
	return nil
}

// advance records one phase's turn: the span rows stored so far that the next
// compression takes, up to the budget, or more to catch up by the compression (after
// a prefill): enough that the rows still to come fit the last turn's budget, at most
// catchUpBudgets budgets a turn.
func (f *freqKV) advance(rec *engine.Recorder) error {
	sp := f.sp
	ph := sp.turn
	sp.turn = (sp.turn + 1) % len(sp.phases)
	l := f.cfg.Span()
	stored := min(f.rows-f.cfg.Sink, l)
	pending := max(0, stored-sp.done[ph])
	future := l - max(0, stored)                             // span rows still to arrive, one a step
	turns := ceilDiv(f.cfg.CacheSize-f.rows, len(sp.phases)) // this phase's, this one included
	need := ceilDiv(max(0, pending+future-sp.budget), turns)
	if n := min(pending, max(sp.budget, min(catchUpBudgets*sp.budget, need))); n > 0 {
		return f.accumulate(rec, ph, n)
	}
	return nil
}

// catchUpBudgets bounds a turn's rows while a phase catches up after a prefill:
// a turn's cost is the accumulator's read-modify-write plus a share per row, so
// 8 budgets (64 rows with 4 phases) keep a medium model's catch-up steps at about
// 1.3x its steady step (after a 1900-row prompt, N = 2048: docs/speed.md); a
// prompt that ends closer to the compression than that allows is compressed whole.
const catchUpBudgets = 8

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

// arenaParams is the compression of arena i's matrices.
func (f *freqKV) arenaParams(i int) shaders.CompressParams {
	a := f.s.arenas[i]
	return f.params(a.count, a.stride)
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
		if err := f.compress(rec); err != nil {
			return 0, err
		}
		f.rows -= steps[0].Rows
		f.compressions++
		steps = steps[1:]
	} else if f.sp != nil {
		if err := f.advance(rec); err != nil {
			return 0, err
		}
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
	if f.sp != nil {
		clear(f.sp.done) // the next shares start new sums
		f.sp.turn = 0
	}
}

func (f *freqKV) Release() {
	f.s.release()
	if f.sp != nil {
		for _, t := range append([]*engine.Tensor{f.sp.table}, f.sp.accs...) {
			if t != nil {
				t.Release()
			}
		}
		f.sp = nil
	}
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
