package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	"github.com/freqkv/freqkv/kvcache"
	"github.com/schollz/progressbar/v3"
)

func init() {
	register(command{name: "perplexity", summary: "perplexity of text with a cache policy (docs/evaluation.md)", run: runPerplexity})
}

type pplChunk struct {
	Start   int     `json:"start"`
	Tokens  int     `json:"tokens"`
	MeanNLL float64 `json:"mean_nll"`
	PPL     float64 `json:"ppl"`
}

// windows returns the start of each window of l tokens every stride tokens
// over a stream of n tokens (each window needs l+1 tokens: inputs and
// targets); stride 0 is one window from the first token.
func windows(n, l, stride int) []int {
	if stride == 0 {
		return []int{0}
	}
	var out []int
	for s := 0; s+l+1 <= n; s += stride {
		out = append(out, s)
	}
	return out
}

func runPerplexity(args []string) error {
	fs := newFlags("perplexity", "-m MODEL (--text FILE | --tokens FILE) [--ctx L] [--stride 256] [cache flags] [--json]",
		"Perplexity by the reference's protocol: windows of L tokens every --stride tokens, each\nevaluated with the grouped forward pass; mean next-token NLL over all positions of all\nwindows, and perplexity exp(mean NLL). --stride 0: one window from the first token\n(inputs 0..L-1, targets 1..L, L = min(--ctx, tokens - 1)).")
	var mf modelFlags
	mf.add(fs)
	mf.addLoRA(fs)
	var in inputFlags
	in.add(fs)
	ctxLen := fs.Int("ctx", 0, "window length L in tokens (default: the model's trained context)")
	stride := fs.Int("stride", 256, "tokens between window starts; 0: one window from the first token")
	var cf cacheFlags
	cf.add(fs, "freqkv", false, "default: the model's trained context; for full, the window length L")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *stride < 0 || *ctxLen < 0 {
		return usagef("--stride and --ctx must not be negative")
	}
	kinds, err := cf.policies()
	if err != nil {
		return err
	}
	dev, m, ids, err := in.loadWithInput(&mf, *asJSON)
	if err != nil {
		return err
	}
	defer dev.Close()
	l := *ctxLen
	if l == 0 {
		l = m.H.ContextLength
	}
	l = min(l, len(ids)-1)
	if l < 1 {
		return usagef("the stream has %d tokens: need at least 2", len(ids))
	}
	size := m.H.ContextLength
	if kinds[0] == kvcache.Full {
		size = l
	}
	spec, err := cf.spec(dev, kinds[0], size)
	if err != nil {
		return err
	}
	opts := cf.options(spec)
	opts.Logits = true
	ctx, err := cf.newContext(m, opts)
	if err != nil {
		return err
	}
	defer ctx.Release()
	starts := windows(len(ids), l, *stride)
	if len(starts) == 0 {
		return usagef("the stream has %d tokens, fewer than one window of --ctx %d + 1", len(ids), l)
	}
	var bar *progressbar.ProgressBar
	if !*asJSON && stderrIsTerminal() {
		bar = progressbar.Default(int64(len(starts)*l), "perplexity")
	}
	// Each window's line is written as soon as it is measured; a SIGINT or
	// SIGTERM prints the summary of the windows so far, marked partial.
	var mu sync.Mutex
	begin := time.Now()
	var chunks []pplChunk
	sum, count, compressions := 0.0, 0, 0
	summary := func(partial bool) error {
		mean := sum / float64(count)
		elapsed := time.Since(begin)
		if *asJSON {
			return json.NewEncoder(stdout).Encode(map[string]any{
				"tokens": count, "windows": len(chunks), "window": l, "stride": *stride, "mean_nll": mean, "ppl": math.Exp(mean),
				"cache":        specJSON(spec),
				"compressions": compressions, "seconds": elapsed.Seconds(), "chunks": chunks, "partial": partial,
			})
		}
		note := ""
		if partial {
			note = fmt.Sprintf(" [partial: interrupted after %d of %d windows]", len(chunks), len(starts))
		}
		_, err := fmt.Fprintf(stdout, "%s cache: %d tokens in %d windows of %d: mean NLL %.4f, perplexity %.4f (%.1f tok/s)%s\n",
			spec.Kind, count, len(chunks), l, mean, math.Exp(mean), float64(count)/elapsed.Seconds(), note)
		return err
	}
	stopSignals := onSignal(func() {
		mu.Lock() // held until exit: nothing more is printed
		if count > 0 {
			summary(true)
		} else {
			fmt.Fprintln(os.Stderr, "freqkv perplexity: interrupted before the first window was measured")
		}
		stdout.flush()
	})
	defer stopSignals()
	for _, s := range starts {
		ctx.Reset()
		nll, err := ctx.NLL(ids[s:s+l], ids[s+1:s+l+1])
		if err != nil {
			return fmt.Errorf("window at token %d: %w", s, cf.explain(spec, err))
		}
		cs := 0.0
		for i, x := range nll {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("window at token %d: position %d: non-finite NLL (NaN or Inf): the model's weights or activations are not finite numbers", s, i)
			}
			cs += x
		}
		mean := cs / float64(len(nll))
		c := pplChunk{Start: s, Tokens: len(nll), MeanNLL: mean, PPL: math.Exp(mean)}
		mu.Lock()
		sum += cs
		count += len(nll)
		compressions += ctx.Cache.Stats().Compressions
		chunks = append(chunks, c)
		if !*asJSON {
			fmt.Fprintf(stdout, "window at %6d: %5d tokens  mean NLL %.4f  ppl %.3f\n", c.Start, c.Tokens, c.MeanNLL, c.PPL)
			err = stdout.flush()
		}
		mu.Unlock()
		if err != nil {
			return err
		}
		if bar != nil {
			bar.Add(len(nll))
		}
	}
	if bar != nil {
		bar.Finish()
		bar.Clear()
	}
	mu.Lock()
	defer mu.Unlock()
	return summary(false)
}
