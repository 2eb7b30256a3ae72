package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/outfile"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/lora"
	"github.com/freqkv/freqkv/train"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func init() {
	register(command{name: "finetune", summary: "fine-tune a LoRA adapter with the KV cache policy in the loop", run: runFinetune})
}

// finetuneLog is one JSON line of --json output.
type finetuneLog struct {
	Event    string  `json:"event"` // "start", "step", "eval", "checkpoint", "done"
	Step     int     `json:"step"`
	Loss     float64 `json:"loss,omitempty"`
	EvalLoss float64 `json:"eval_loss,omitempty"`
	GradNorm float64 `json:"grad_norm,omitempty"`
	LR       float64 `json:"lr,omitempty"`
	TokPerS  float64 `json:"tok_per_s,omitempty"`
	Seconds  float64 `json:"seconds"`
	Path     string  `json:"path,omitempty"`
	// start: the plan and the device memory of training
	Tokens       int   `json:"tokens,omitempty"`
	Segments     int   `json:"segments,omitempty"`
	Compressions int   `json:"compressions,omitempty"`
	TrainBytes   int64 `json:"train_bytes,omitempty"`
	ParamBytes   int64 `json:"param_bytes,omitempty"`
	WeightBytes  int64 `json:"weight_bytes,omitempty"`
	KeptLayers   int   `json:"kept_layers,omitempty"` // layers whose activations are kept, not recomputed
	KeptBytes    int64 `json:"kept_bytes,omitempty"`
	// start, --task repeat: the passage's tokens and the gap before its repeat
	Passage int `json:"passage,omitempty"`
	Gap     int `json:"gap,omitempty"`
}

// errInterrupted ends a run stopped by a signal (its message is already out).
var errInterrupted = errors.New("interrupted")

// history is the loss curve, kept in checkpoints so a resumed run plots all of it.
type history struct {
	Steps     []int     `json:"steps"`
	Loss      []float64 `json:"loss"`
	EvalSteps []int     `json:"eval_steps"`
	EvalLoss  []float64 `json:"eval_loss"`
}

func runFinetune(args []string) error {
	fs := newFlags("finetune", "-m MODEL --text FILE -o ADAPTER.gguf [--ctx 2048] [--cache freqkv] [--cache-size 512] [--steps N] [flags]",
		"Fine-tunes LoRA adapters (rank --lora-rank, alpha --lora-alpha) on q, k, v and o, plus the\n"+
			"token embedding and the norms, with the KV cache policy in the training forward: FreqKV\n"+
			"(grouped: the first N tokens causal, then groups of L-m tokens over sinks, compressed and\n"+
			"recent rows, the cache compressed between groups and the gradient carried back through\n"+
			"every compression), a StreamingLLM window, or full attention. AdamW, constant learning rate\n"+
			"after a linear warm-up, gradient accumulation, clipping of the global gradient norm, seeded\n"+
			"data order. Writes the adapter (llama.cpp's GGUF layout; load it with --lora), a checkpoint\n"+
			"ADAPTER.gguf.ckpt (every --save-every steps, at the end and on Ctrl-C; --resume continues\n"+
			"from it) and the loss curve ADAPTER.png.")
	var mf modelFlags
	mf.add(fs)
	text := fs.String("text", "", "training text file")
	evalText := fs.String("eval-text", "", "held-out text for the evaluation loss (default: none)")
	ctxLen := fs.Int("ctx", 2048, "tokens per training sequence")
	var cf cacheFlags
	cf.add(fs, "freqkv", false, "default: the model's trained context; for full: --ctx")
	steps := fs.Int("steps", 100, "optimiser steps")
	lr := fs.Float64("lr", 1e-3, "learning rate after the warm-up")
	warmup := fs.Int("warmup", 10, "steps of linear learning-rate warm-up")
	accum := fs.Int("grad-accum", 1, "sequences per optimiser step (gradient accumulation)")
	clip := fs.Float64("clip", 1, "clip the global gradient norm to this (0: no clipping)")
	decay := fs.Float64("weight-decay", 0, "AdamW decoupled weight decay on matrices")
	what := fs.String("train", "lora", "lora: LoRA adapters on q, k, v, o (plus --train-embeddings, --train-norms); all: every matrix whole (f32/f16 models; -o is then a full model GGUF)")
	rank := fs.Int("lora-rank", 8, "LoRA rank on q, k, v, o (0: no adapters)")
	alpha := fs.Float64("lora-alpha", 16, "LoRA alpha (scale alpha/rank)")
	embd := fs.Bool("train-embeddings", true, "train the token embedding (and a classifier tied to it)")
	norms := fs.Bool("train-norms", true, "train the RMSNorm weights")
	seed := fs.Uint64("seed", 1, "seed of the data order and of the LoRA initialisation")
	task := fs.String("task", "text", "text: consecutive text; repeat: passage, a gap longer than the cache, the passage again")
	out := fs.StringP("output", "o", "", "adapter file to write (GGUF)")
	evalEvery := fs.Int("eval-every", 0, "held-out loss every E steps (0: at the end only, with --eval-text)")
	evalSeqs := fs.Int("eval-seqs", 2, "held-out sequences per evaluation")
	saveEvery := fs.Int("save-every", 0, "write the checkpoint every K steps (0: at the end and on Ctrl-C only)")
	resume := fs.Bool("resume", false, "continue from ADAPTER.gguf.ckpt")
	actMiB := fs.Int64("activation-memory", train.DefaultActivationBytes>>20, "MiB of activations kept from the forward for the backward (layers that fit are not recomputed; 0: recompute every layer, the least memory)")
	asJSON := fs.Bool("json", false, "JSON lines on stdout instead of a progress bar")
	maxInput := addMaxInput(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *out == "":
		return usagef("no output: pass -o ADAPTER.gguf")
	case *text == "":
		return usagef("no training text: pass --text FILE")
	case *actMiB < 0:
		return usagef("--activation-memory %d: want MiB >= 0 (0 recomputes every layer)", *actMiB)
	case *steps < 1 || *accum < 1 || *ctxLen < 2 || *warmup < 0 || *evalEvery < 0 || *saveEvery < 0 || *evalSeqs < 1:
		return usagef("--steps, --grad-accum and --eval-seqs must be at least 1, --ctx at least 2, --warmup, --eval-every and --save-every not negative")
	case !(*lr > 0) || math.IsInf(*lr, 0):
		return usagef("--lr %v must be a positive number", *lr)
	case *rank < 0 || !(*alpha > 0) || math.IsInf(*alpha, 0):
		return usagef("--lora-rank %d must not be negative and --lora-alpha %v must be positive", *rank, *alpha)
	case !(*clip >= 0) || !(*decay >= 0):
		return usagef("--clip and --weight-decay must not be negative")
	case *what != "lora" && *what != "all":
		return usagef("--train %q: use lora or all", *what)
	case *what == "all" && fs.Changed("lora-rank"):
		return usagef("--train all trains every matrix whole: drop --lora-rank")
	case *what == "all" && fs.Changed("train-embeddings") && !*embd:
		return usagef("--train all trains the embedding too: drop --train-embeddings=false")
	case *task != "text" && *task != "repeat":
		return usagef("--task %q: use text or repeat", *task)
	case *rank == 0 && !*embd && !*norms:
		return usagef("nothing to train: --lora-rank 0 with --train-embeddings=false and --train-norms=false")
	}
	ckptPath := *out + ".ckpt"
	pngPath := strings.TrimSuffix(*out, filepath.Ext(*out)) + ".png"
	if err := mf.check(); err != nil {
		return err
	}
	if err := outfile.Check([]outfile.Named{{Name: "-o", Path: *out}, {Name: "checkpoint", Path: ckptPath}, {Name: "loss curve", Path: pngPath}},
		[]outfile.Named{{Name: "-m", Path: mf.path}, {Name: "--tokenizer", Path: mf.tokenizer}, {Name: "--text", Path: *text}, {Name: "--eval-text", Path: *evalText}}); err != nil {
		return usagef("%v", err)
	}
	raw, err := readInput("--text", *text, *maxInput)
	if err != nil {
		return err
	}
	var evalRaw []byte
	if *evalText != "" {
		if evalRaw, err = readInput("--eval-text", *evalText, *maxInput); err != nil {
			return err
		}
	}
	f, err := mf.open()
	if err != nil {
		return err
	}
	defer f.Close()
	dev, err := engine.Open(engine.Options{Adapter: mf.adapter})
	if err != nil {
		return err
	}
	defer dev.Close()
	m, err := llama.Load(dev, f, llama.LoadOptions{BackwardTypes: true})
	if err != nil {
		return err
	}
	defer m.Release()
	cache, err := trainSpec(fs, &cf, dev, m.H.ContextLength, *ctxLen)
	if err != nil {
		return err
	}
	ids, err := m.Tok.Encode(string(raw), m.Tok.AddBOS())
	if err != nil {
		return fmt.Errorf("tokenize %s: %w", *text, err)
	}
	if len(ids) < *ctxLen+1 {
		return usagef("--text %s has %d tokens, fewer than one training sequence of --ctx %d + 1; use a longer text or a smaller --ctx", *text, len(ids), *ctxLen)
	}
	// A repeat's gap must exceed the cache a bounded policy would hold; a full
	// cache holds the whole sequence, so its baseline trains on the sequences
	// the bounded policies get at their default N, the trained context.
	gapRows := cache.Size
	if cache.Kind == kvcache.Full {
		gapRows = m.H.ContextLength
	}
	data, err := train.NewData(ids, *ctxLen, train.Task(*task), gapRows, *seed)
	if err != nil {
		return usagef("%v", err)
	}
	var evalSet [][]int32
	if evalRaw != nil {
		eids, err := m.Tok.Encode(string(evalRaw), m.Tok.AddBOS())
		if err != nil {
			return fmt.Errorf("tokenize %s: %w", *evalText, err)
		}
		ed, err := train.NewData(eids, *ctxLen, train.Task(*task), gapRows, *seed+1)
		if err != nil {
			return usagef("--eval-text: %v", err)
		}
		for range *evalSeqs {
			evalSet = append(evalSet, ed.Next())
		}
	}
	all := *what == "all"
	if all {
		*rank = 0
	}
	tr, err := train.New(m, f, train.Config{Cache: cache, SeqLen: *ctxLen, Rank: *rank, Alpha: *alpha,
		Embeddings: *embd || all, Norms: *norms, All: all, Seed: *seed, ActivationBytes: activationBytes(*actMiB)})
	if errors.Is(err, train.ErrParamTooLarge) {
		return usagef("%v; leave it frozen (--train-embeddings=false for the embedding) or train LoRA adapters", err)
	}
	if err != nil {
		return cf.explain(cache, err)
	}
	defer tr.Release()
	opt := train.DefaultOptim(*lr, *warmup)
	opt.ClipNorm, opt.WeightDecay = *clip, *decay
	config := fmt.Sprintf("model=%s cache=%s train=%s ctx=%d rank=%d alpha=%g embeddings=%v norms=%v task=%s seed=%d accum=%d",
		filepath.Base(mf.path), describe(cache), *what,
		*ctxLen, *rank, *alpha, *embd, *norms, *task, *seed, *accum)
	var hist history
	if *resume {
		extra, err := tr.LoadCheckpoint(ckptPath, config)
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(extra), &hist); err != nil {
			return fmt.Errorf("checkpoint %s: loss history: %w", ckptPath, err)
		}
		// replay the data order up to where the checkpoint stopped
		for range tr.Steps() * *accum {
			data.Next()
		}
	}
	if tr.Steps() >= *steps {
		return usagef("the checkpoint is at step %d, already --steps %d; raise --steps to continue", tr.Steps(), *steps)
	}
	enc := json.NewEncoder(stdout)
	logf := func(l finetuneLog) {
		if *asJSON {
			// A write error is kept by stdout and reported at exit.
			_ = enc.Encode(l)
			_ = stdout.flush()
		}
	}
	logf(finetuneLog{Event: "start", Step: tr.Steps(), Tokens: len(ids), Segments: len(tr.Schedule().Segments), Compressions: tr.Schedule().Compressions(),
		TrainBytes: tr.Bytes(), ParamBytes: tr.ParamBytes(), WeightBytes: m.WeightBytes, KeptLayers: tr.KeptLayers(), KeptBytes: tr.KeptBytes(),
		Passage: data.Passage(), Gap: data.Gap()})
	if !*asJSON {
		fmt.Fprintf(os.Stderr, "%s: %d training tokens (%d sequences of %d), cache %s, %d segments and %d compressions per sequence\n",
			filepath.Base(mf.path), len(ids), data.Windows(), *ctxLen, cache.Kind, len(tr.Schedule().Segments), tr.Schedule().Compressions())
		fmt.Fprintf(os.Stderr, "training memory %s (parameters, gradients and AdamW moments %s; activations of %d of %d layers kept, %s) besides %s of weights\n",
			humanBytes(tr.Bytes()), humanBytes(tr.ParamBytes()), tr.KeptLayers(), m.H.Layers, humanBytes(tr.KeptBytes()), humanBytes(m.WeightBytes))
	}
	save := func() error {
		b, _ := json.Marshal(hist)
		if err := outfile.Write(ckptPath, func(w io.Writer) error { return tr.WriteCheckpoint(w, config, string(b)) }); err != nil {
			return fmt.Errorf("checkpoint %s: %w", ckptPath, err)
		}
		logf(finetuneLog{Event: "checkpoint", Step: tr.Steps(), Path: ckptPath})
		return nil
	}
	evaluate := func() (float64, error) {
		sum := 0.0
		for _, s := range evalSet {
			l, err := tr.Loss(s)
			if err != nil {
				return 0, err
			}
			sum += l
		}
		return sum / float64(len(evalSet)), nil
	}
	// Ctrl-C (or SIGTERM): the step in flight finishes, the checkpoint is
	// written, then the process exits with the signal's status.
	var stop atomic.Bool
	finished := make(chan struct{})
	defer onSignal(func() {
		stop.Store(true)
		<-finished
	})()
	defer close(finished) // before the hook is removed: the handler holds its lock while waiting
	var bar *progressbar.ProgressBar
	if !*asJSON && stderrIsTerminal() {
		bar = progressbar.NewOptions(*steps, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionSetElapsedTime(true), progressbar.OptionFullWidth())
		_ = bar.Set(tr.Steps())
	}
	begin := time.Now()
	tokens := 0
	for tr.Steps() < *steps {
		if stop.Load() {
			if bar != nil {
				_ = bar.Clear()
			}
			if err := save(); err != nil {
				return err
			}
			// said here: the signal handler ends the process as soon as this returns
			fmt.Fprintf(os.Stderr, "freqkv finetune: interrupted after step %d; checkpoint %s written, continue with --resume\n", tr.Steps(), ckptPath)
			return errInterrupted
		}
		seqs := make([][]int32, *accum)
		for i := range seqs {
			seqs[i] = data.Next()
		}
		res, err := tr.Step(seqs, opt)
		if err != nil {
			if bar != nil {
				_ = bar.Clear()
			}
			if !errors.Is(err, train.ErrNotFinite) {
				return err
			}
			if tr.Steps() > 0 {
				if serr := save(); serr != nil {
					return fmt.Errorf("%v; saving the checkpoint also failed: %v", err, serr)
				}
				return fmt.Errorf("%v; checkpoint %s holds step %d (lower --lr or raise --warmup)", err, ckptPath, tr.Steps())
			}
			return fmt.Errorf("%v (lower --lr or raise --warmup)", err)
		}
		tokens += res.Tokens
		elapsed := time.Since(begin).Seconds()
		tps := float64(tokens) / elapsed
		hist.Steps = append(hist.Steps, res.Step)
		hist.Loss = append(hist.Loss, res.Loss)
		logf(finetuneLog{Event: "step", Step: res.Step, Loss: res.Loss, GradNorm: res.GradNorm, LR: res.LR, TokPerS: tps, Seconds: elapsed})
		if bar != nil {
			bar.Describe(fmt.Sprintf("loss %.4f  %.0f tok/s", res.Loss, tps))
			_ = bar.Set(res.Step)
		}
		last := res.Step == *steps
		if len(evalSet) > 0 && ((*evalEvery > 0 && res.Step%*evalEvery == 0) || last) {
			el, err := evaluate()
			if err != nil {
				return err
			}
			hist.EvalSteps = append(hist.EvalSteps, res.Step)
			hist.EvalLoss = append(hist.EvalLoss, el)
			logf(finetuneLog{Event: "eval", Step: res.Step, EvalLoss: el, Seconds: time.Since(begin).Seconds()})
			if bar != nil {
				bar.Describe(fmt.Sprintf("loss %.4f  eval %.4f  %.0f tok/s", res.Loss, el, tps))
			}
		}
		if *saveEvery > 0 && res.Step%*saveEvery == 0 && !last {
			if err := save(); err != nil {
				return err
			}
		}
	}
	if bar != nil {
		_ = bar.Finish()
		_ = bar.Clear()
	}
	if err := save(); err != nil {
		return err
	}
	a, err := tr.Adapter()
	if err != nil {
		return err
	}
	if all {
		// every matrix trained: the output is the whole model
		err = outfile.Write(*out, func(w io.Writer) error {
			_, err := lora.WriteMerged(w, f, a, 1)
			return err
		})
		if err != nil {
			return fmt.Errorf("model %s: %w", *out, err)
		}
	} else if err := writeAdapter(*out, a); err != nil {
		return err
	}
	if err := plotLoss(pngPath, hist, fmt.Sprintf("%s, %s cache, %d tokens", filepath.Base(mf.path), cache.Kind, *ctxLen)); err != nil {
		return fmt.Errorf("loss curve %s: %w", pngPath, err)
	}
	elapsed := time.Since(begin).Seconds()
	final := finetuneLog{Event: "done", Step: tr.Steps(), Loss: hist.Loss[len(hist.Loss)-1], Seconds: elapsed, Path: *out}
	if tokens > 0 {
		final.TokPerS = float64(tokens) / elapsed
	}
	if n := len(hist.EvalLoss); n > 0 {
		final.EvalLoss = hist.EvalLoss[n-1]
	}
	if *asJSON {
		return enc.Encode(final)
	}
	fmt.Fprintf(stdout, "%d steps, last loss %.4f", final.Step, final.Loss)
	if final.EvalLoss != 0 {
		fmt.Fprintf(stdout, ", held-out loss %.4f", final.EvalLoss)
	}
	fmt.Fprintf(stdout, " (%.0f tok/s); adapter %s, checkpoint %s, loss curve %s\n", final.TokPerS, *out, ckptPath, pngPath)
	return nil
}

// trainSpec is the cache policy of the training forward the flags ask for:
// --cache-size defaults to the model's trained context (full: to --ctx), and
// keys and values are f32 (training keeps them so).
func trainSpec(fs *pflag.FlagSet, cf *cacheFlags, dev *engine.Device, trained, ctx int) (kvcache.Spec, error) {
	kinds, err := cf.policies()
	if err != nil {
		return kvcache.Spec{}, err
	}
	if fs.Changed("kv") && cf.kv != "f32" {
		return kvcache.Spec{}, usagef("--kv %s: training keeps keys and values in f32", cf.kv)
	}
	for _, f := range []struct{ name, v string }{{"kv-k", cf.kvK}, {"kv-v", cf.kvV}} {
		if fs.Changed(f.name) && f.v != "f32" {
			return kvcache.Spec{}, usagef("--%s %s: training keeps keys and values in f32", f.name, f.v)
		}
	}
	if fs.Changed("batch") {
		return kvcache.Spec{}, usagef("--batch does not apply to finetune: each cache segment runs as one step")
	}
	cf.kv, cf.kvK, cf.kvV = "f32", "", ""
	size := trained
	if kinds[0] == kvcache.Full {
		size = ctx
	}
	s, err := cf.spec(dev, kinds[0], size)
	if err != nil {
		return s, err
	}
	if err := s.CheckMethodOnly(); err != nil { // h2o, ablations, per-layer: inference only
		return s, cf.explain(s, err)
	}
	return s, nil
}

// writeAdapter writes a to path through a temporary file.
func writeAdapter(path string, a *lora.Adapter) error {
	if err := outfile.Write(path, func(w io.Writer) error { return lora.Write(w, a) }); err != nil {
		return fmt.Errorf("adapter %s: %w", path, err)
	}
	return nil
}

// plotLoss draws the training loss per step and the held-out loss.
func plotLoss(path string, h history, title string) error {
	p := plot.New()
	p.Title.Text = "Fine-tuning loss (" + title + ")"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "mean NLL (nats/token)"
	train := make(plotter.XYs, len(h.Steps))
	for i, s := range h.Steps {
		train[i] = plotter.XY{X: float64(s), Y: h.Loss[i]}
	}
	lines := []any{"training", train}
	if len(h.EvalSteps) > 0 {
		ev := make(plotter.XYs, len(h.EvalSteps))
		for i, s := range h.EvalSteps {
			ev[i] = plotter.XY{X: float64(s), Y: h.EvalLoss[i]}
		}
		lines = append(lines, "held-out", ev)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return err
	}
	return outfile.Write(path, func(w io.Writer) error {
		_, err := wt.WriteTo(w)
		return err
	})
}

// activationBytes is train.Config.ActivationBytes for --activation-memory MiB.
func activationBytes(mib int64) int64 {
	if mib == 0 {
		return -1 // keep none
	}
	return min(mib, math.MaxInt64>>20) << 20 // any larger budget keeps every layer anyway
}
