package main

import (
	"fmt"
	"os"

	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/tokenizer"
)

func init() {
	register(command{name: "generate", summary: "generate text from a prompt, streaming it to stdout", run: runGenerate})
}

func runGenerate(args []string) error {
	fs := newFlags("generate", "-m MODEL [-p PROMPT | -f FILE] [-n N] [cache and sampling flags]",
		"Streams generated text to stdout; a summary (prefill and decode tok/s, compressions,\nKV bytes now vs a full cache) goes to stderr at the end. Defaults: freqkv cache with\nN = the model's trained context, S = 4, R = 0, G = 0.5; greedy sampling.")
	var mf modelFlags
	mf.add(fs)
	mf.addLoRA(fs)
	prompt := fs.StringP("prompt", "p", "", "prompt text (empty: start from BOS)")
	promptFile := fs.StringP("file", "f", "", "read the prompt from a file")
	tokensFile := fs.String("tokens", "", "prompt as a file of whitespace-separated token ids")
	n := fs.IntP("n-predict", "n", 256, "tokens to generate")
	var cf cacheFlags
	cf.add(fs, "freqkv", false, "default: the model's trained context; for full, at most the prompt + -n")
	var s llama.Sampler
	fs.Float64Var(&s.Temperature, "temp", 0, "temperature (0: greedy)")
	fs.IntVar(&s.TopK, "top-k", 40, "top-k (0: off)")
	fs.Float64Var(&s.TopP, "top-p", 0.95, "top-p nucleus (1: off)")
	fs.Float64Var(&s.MinP, "min-p", 0.05, "min-p relative to the top token (0: off)")
	fs.Float64Var(&s.RepeatPenalty, "repeat-penalty", 1, "penalty for tokens in the last --repeat-last-n (1: off)")
	fs.IntVar(&s.RepeatWindow, "repeat-last-n", 64, "tokens the repeat penalty looks back over")
	fs.Uint64Var(&s.Seed, "seed", 0, "random seed; the same seed gives the same tokens")
	stopEOS := fs.Bool("stop-at-eos", true, "stop at the end-of-sequence token")
	maxInput := addMaxInput(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (use -p for the prompt)", fs.Arg(0))
	}
	set := 0
	for _, v := range []string{*prompt, *promptFile, *tokensFile} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return usagef("-p, -f and --tokens exclude each other")
	}
	if *n < 1 {
		return usagef("-n %d must be at least 1", *n)
	}
	if err := checkSampler(&s); err != nil {
		return err
	}
	kinds, err := cf.policies()
	if err != nil {
		return err
	}
	if err := mf.check(); err != nil {
		return err
	}
	text := *prompt
	if *promptFile != "" {
		b, err := readInput("-f", *promptFile, *maxInput)
		if err != nil {
			return err
		}
		text = string(b)
	}
	var ids []int32
	if *tokensFile != "" {
		if ids, err = readTokenFile(*tokensFile, *maxInput); err != nil {
			return err
		}
	}
	dev, m, err := mf.load(false)
	if err != nil {
		return err
	}
	defer dev.Close()
	if *tokensFile == "" && text != "" {
		if ids, err = m.Tok.Encode(text, m.Tok.AddBOS()); err != nil {
			return err
		}
	} else if err := checkTokenIDs("--tokens "+*tokensFile, ids, m.H.Vocab); err != nil {
		return err
	}
	size := m.H.ContextLength
	if kinds[0] == kvcache.Full {
		// a full cache needs no more rows than the run can fill
		size = min(size, len(ids)+*n+1)
	}
	spec, err := cf.spec(dev, kinds[0], size)
	if err != nil {
		return err
	}
	ctx, err := cf.newContext(m, cf.options(spec))
	if err != nil {
		return err
	}
	defer ctx.Release()
	out := stdout
	if text != "" {
		fmt.Fprint(out, text)
		if err := out.flush(); err != nil {
			return err
		}
	}
	seen := ids
	if len(seen) == 0 {
		seen = []int32{m.Tok.BOS()}
	}
	dec, err := continuationDecoder(m.Tok, seen)
	if err != nil {
		return err
	}
	var decErr error
	st, err := ctx.Generate(ids, *n, &s, *stopEOS, func(tok int32) bool {
		piece, err := dec.Add(tok)
		if err != nil {
			decErr = err
			return false
		}
		fmt.Fprint(out, piece)
		return out.flush() == nil
	})
	fmt.Fprint(out, dec.Flush())
	fmt.Fprintln(out)
	if err == nil {
		err = decErr
	}
	if ferr := out.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return cf.explain(spec, err)
	}
	cs := ctx.Cache.Stats()
	full, err := m.CacheGeometry().SpecBytes(spec, ctx.Tokens())
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\nprefill %d tokens at %.1f tok/s, decode %d tokens at %.1f tok/s on %s\n", st.PromptTokens, st.PrefillTPS(), st.Generated, st.DecodeTPS(), dev.Info.Name)
	fmt.Fprintf(os.Stderr, "cache %s: %d rows in use after %d tokens, %d compressions; KV memory %s (a full cache of %d tokens: %s)\n",
		spec.Kind, cs.Rows, ctx.Tokens(), cs.Compressions, humanBytes(cs.Bytes), ctx.Tokens(), humanBytes(full))
	return nil
}

// continuationDecoder returns a streaming decoder that has seen the prompt,
// so that the first generated token keeps its leading space (a SentencePiece
// decoder drops it at the start of a text); the prompt's own text, printed
// before, is discarded.
func continuationDecoder(tok tokenizer.Tokenizer, prompt []int32) (*tokenizer.Decoder, error) {
	dec := tok.NewDecoder()
	for _, id := range prompt {
		if _, err := dec.Add(id); err != nil {
			return nil, err
		}
	}
	dec.Flush()
	return dec, nil
}
