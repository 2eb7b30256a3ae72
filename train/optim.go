package train

import (
	"errors"
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

// ErrNotFinite is wrapped by errors of a step whose loss or gradient is
// NaN or infinite; the parameters are left as before it.
var ErrNotFinite = errors.New("training diverged")

// Optim is AdamW with a linear warm-up to a constant learning rate and
// global gradient-norm clipping.
type Optim struct {
	LR           float64
	Warmup       int // steps of linear warm-up from LR/Warmup to LR
	Beta1, Beta2 float64
	Eps          float64
	WeightDecay  float64 // decoupled, on matrices (LoRA, embeddings), not norms
	ClipNorm     float64 // 0: no clipping
}

// DefaultOptim is the recipe's optimiser: AdamW (0.9, 0.999), no weight
// decay, clipping at 1.
func DefaultOptim(lr float64, warmup int) Optim {
	return Optim{LR: lr, Warmup: warmup, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, ClipNorm: 1}
}

// Rate is the learning rate of 1-based step.
func (o Optim) Rate(step int) float64 {
	if o.Warmup > 0 && step <= o.Warmup {
		return o.LR * float64(step) / float64(o.Warmup)
	}
	return o.LR
}

// StepResult describes one optimiser step.
type StepResult struct {
	Step     int     // 1-based
	Loss     float64 // mean NLL over the step's tokens
	GradNorm float64 // global norm of the (mean) gradient before clipping
	LR       float64
	Tokens   int
}

// Step runs forward and backward over each sequence (T+1 tokens each:
// inputs and next-token targets), accumulating the mean gradient, then one
// AdamW update. A non-finite loss or gradient leaves the parameters as
// they were and returns an error naming the step.
func (t *Trainer) Step(seqs [][]int32, opt Optim) (StepResult, error) {
	res := StepResult{Step: t.steps + 1, LR: opt.Rate(t.steps + 1)}
	if len(seqs) == 0 {
		return res, fmt.Errorf("a step needs at least one sequence")
	}
	var sum float64
	for _, seq := range seqs {
		nll, err := t.run(seq, true)
		if err != nil {
			return res, err
		}
		sum += nll
	}
	k := len(seqs)
	T := t.cfg.SeqLen
	res.Tokens = k * T
	res.Loss = sum / float64(k)
	if !checkFinite(res.Loss) {
		t.zeroGrads()
		return res, fmt.Errorf("%w: step %d: the loss is %g; parameters are left as after step %d", ErrNotFinite, res.Step, res.Loss, t.steps)
	}
	norm, err := t.update(opt, k, res.Step)
	res.GradNorm = norm
	if err != nil {
		return res, err
	}
	t.steps++
	return res, nil
}

// run records and submits one sequence's forward (and backward) pass, and
// returns its mean NLL. The gradient scale is 1/T per sequence.
func (t *Trainer) run(seq []int32, backward bool) (float64, error) {
	T := t.cfg.SeqLen
	if len(seq) != T+1 {
		return 0, fmt.Errorf("a training sequence has %d tokens, want %d (inputs and targets)", len(seq), T+1)
	}
	ids := make([]uint32, T+1)
	for i, x := range seq {
		if x < 0 || int(x) >= t.h.Vocab {
			return 0, fmt.Errorf("token %d at position %d is outside the vocabulary of %d", x, i, t.h.Vocab)
		}
		ids[i] = uint32(x)
	}
	if err := t.b.ids.Upload(u32le(ids[:T])); err != nil {
		return 0, err
	}
	if err := t.b.targets.Upload(u32le(ids[1:])); err != nil {
		return 0, err
	}
	if backward && t.embd != nil {
		t.unique = t.unique[:0]
		for g, s := range t.sched.Segments {
			index, unique := shaders.EmbeddingGradIndex(ids[s.Start : s.Start+s.Tokens])
			t.unique = append(t.unique, unique)
			if err := t.b.index[g].Buf.Write(t.b.index[g].Offset, u32le(index)); err != nil {
				return 0, err
			}
		}
	}
	r := t.newRecorder()
	t.forward(r)
	t.head(r, float32(1/float64(T)), backward)
	if backward {
		t.backward(r)
	}
	var rb *engine.Readback
	if r.err == nil {
		rb = r.rec.ReadBack(t.b.nll.Buf, t.b.nll.Offset, uint64(4*T))
	}
	if err := r.finish(); err != nil {
		return 0, err
	}
	var sum float64
	for _, x := range rb.Float32s() {
		sum += float64(x)
	}
	return sum / float64(T), nil
}

// Prepare compiles every kernel a step runs by recording one step's passes
// without running them, so the first real step's time is the step's.
func (t *Trainer) Prepare() error {
	if len(t.unique) != len(t.sched.Segments) {
		t.unique = t.unique[:0]
		for _, s := range t.sched.Segments {
			t.unique = append(t.unique, s.Tokens) // the most a segment can have
		}
	}
	r := t.newRecorder()
	t.forward(r)
	t.head(r, 1, true)
	t.backward(r)
	t.gradNorm(r, 1)
	for _, p := range t.Params {
		r.do("adamw", func() error {
			return t.ops.AdamW(r.rec, p.T(), p.Grad, p.M, p.V, t.b.clip, p.Elements(), shaders.AdamWParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: 1, GradScale: 1})
		})
	}
	r.rec.Discard()
	return r.err
}

// gradNorm records the global gradient norm and its clipping factor for
// maxNorm into b.clip.
func (t *Trainer) gradNorm(r *recorder, maxNorm float32) {
	o, b := t.ops, &t.b
	slot := 0
	for _, p := range t.Params {
		r.do("grad norm", func() error {
			next, err := o.SumSquares(r.rec, p.Grad, p.Elements(), b.partials, slot)
			slot = next
			return err
		})
	}
	r.do("grad norm", func() error { return o.GradNormFinish(r.rec, b.partials, slot, maxNorm, b.clip) })
}

// Loss is the mean NLL of one sequence (T+1 tokens) under the training
// forward, without gradients.
func (t *Trainer) Loss(seq []int32) (float64, error) { return t.run(seq, false) }

// update clips and applies the accumulated gradients of k sequences.
func (t *Trainer) update(opt Optim, k, step int) (float64, error) {
	o, b := t.ops, &t.b
	r := t.newRecorder()
	r.phase("optimizer")
	// the stored gradients are the sum over k sequences of each one's mean:
	// their norm is k times that of the mean gradient
	t.gradNorm(r, float32(opt.ClipNorm*float64(k)))
	var norm *engine.Readback
	if r.err == nil {
		norm = r.rec.ReadBack(b.clip.Buf, b.clip.Offset, 8)
	}
	if err := r.finish(); err != nil {
		return 0, err
	}
	g := float64(norm.Float32s()[0]) / float64(k)
	if !checkFinite(g) {
		t.zeroGrads()
		return g, fmt.Errorf("%w: step %d: the gradient norm is %g; parameters are left as after step %d", ErrNotFinite, step, g, step-1)
	}
	r = t.newRecorder()
	r.phase("optimizer")
	for _, p := range t.Params {
		ap := shaders.AdamWParams{LR: float32(opt.Rate(step)), Beta1: float32(opt.Beta1), Beta2: float32(opt.Beta2),
			Eps: float32(opt.Eps), Step: step, GradScale: float32(1 / float64(k)), ZeroGrad: true}
		if p.Decay {
			ap.WeightDecay = float32(opt.WeightDecay)
		}
		r.do("adamw "+p.Name, func() error { return o.AdamW(r.rec, p.T(), p.Grad, p.M, p.V, b.clip, p.Elements(), ap) })
	}
	return g, r.finish()
}

// zeroGrads clears the accumulated gradients (after a failed step).
func (t *Trainer) zeroGrads() {
	r := t.newRecorder()
	for _, p := range t.Params {
		r.do("zero grads", func() error { return t.ops.Fill(r.rec, p.Grad, 0, p.Elements(), 0) })
	}
	_ = r.finish()
}

// Gradients runs forward and backward over one sequence and returns its
// mean NLL and the gradient of every trainable tensor (for checks); the
// accumulated gradients are cleared first and after.
func (t *Trainer) Gradients(seq []int32) (float64, map[string][]float32, error) {
	t.zeroGrads()
	loss, err := t.run(seq, true)
	if err != nil {
		return 0, nil, err
	}
	out := map[string][]float32{}
	for _, p := range t.Params {
		g, err := p.Grad.ReadF32()
		if err != nil {
			return 0, nil, err
		}
		out[p.Name] = g[:p.Elements()]
	}
	t.zeroGrads()
	return loss, out, nil
}

// SetParam overwrites a trainable tensor's value.
func (t *Trainer) SetParam(name string, v []float32) error {
	p := t.Param(name)
	if p == nil {
		return fmt.Errorf("no trainable tensor %q", name)
	}
	if len(v) != p.Elements() {
		return fmt.Errorf("tensor %s has %d values, got %d", name, p.Elements(), len(v))
	}
	return p.T().UploadF32(v)
}

// Values reads every trainable tensor's value by name.
func (t *Trainer) Values() (map[string][]float32, error) {
	out := map[string][]float32{}
	for _, p := range t.Params {
		v, err := p.T().ReadF32()
		if err != nil {
			return nil, err
		}
		out[p.Name] = v[:p.Elements()]
	}
	return out, nil
}
