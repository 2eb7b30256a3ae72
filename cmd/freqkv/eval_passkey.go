package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/freqkv/freqkv/eval"
	"github.com/freqkv/freqkv/internal/outfile"
)

func runPasskey(args []string) error {
	fs := newFlags("eval passkey", "-m MODEL [--lengths 256,512,1024] [--depths 0,0.5,1] [--trials 3] [--filler FILE] [--cache full,window,freqkv] [-o heatmap.png] [--json]",
		"The passkey test (llama.cpp's, generalised): filler text, the sentence \"The pass key is\nNNNNN. Remember it.\" at a depth of the filler (0: first, 1: last), more filler, then\n\"What is the pass key? The pass key is\"; greedy decode, correct when the first number\nin the answer equals the key. Every (length, depth) cell gets --trials seeded random\nkeys; every cache answers the same prompts. Lengths are prompt tokens, BOS included.")
	var f evalFlags
	f.add(fs, "write the accuracy heatmaps (length x depth, one panel per cache) to this PNG")
	mf, ec := &f.mf, &f.ec
	lengthsFlag := fs.String("lengths", "256,512,1024", "comma-separated prompt lengths in tokens")
	depthsFlag := fs.String("depths", "0,0.25,0.5,0.75,1", "comma-separated key depths in [0, 1]")
	trials := fs.Int("trials", 3, "random keys per cell")
	digits := fs.Int("digits", 5, "digits of a key")
	seed := fs.Uint64("seed", 1, "seed of the keys (and of the filler offsets with --filler)")
	fillerPath := fs.String("filler", "", "text file to cut the haystack from (default: a repeated sentence)")
	maxInput := addMaxInput(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	lengths, err := intList("lengths", *lengthsFlag)
	if err != nil {
		return err
	}
	depths, err := parseFloats("depths", *depthsFlag)
	if err != nil {
		return err
	}
	for _, d := range depths {
		if !(d >= 0 && d <= 1) {
			return usagef("--depths: %g is outside [0, 1]", d)
		}
	}
	maxLen := 0
	for _, l := range lengths {
		if l < 1 {
			return usagef("--lengths: %d must be positive", l)
		}
		maxLen = max(maxLen, l)
	}
	if *trials < 1 {
		return usagef("--trials %d must be at least 1", *trials)
	}
	if *digits < 1 || *digits > 18 {
		return usagef("--digits %d: use 1 to 18", *digits)
	}
	if err := checkPlotPath(*f.out, append(mf.files(), outfile.Named{Name: "--filler", Path: *fillerPath})); err != nil {
		return err
	}
	if _, err := ec.entries(); err != nil {
		return err
	}
	fillerText, repeat := eval.DefaultFiller, true
	if *fillerPath != "" {
		b, err := readInput("--filler", *fillerPath, *maxInput)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(b)) == "" {
			return usagef("--filler %s is empty: give a file of text", *fillerPath)
		}
		fillerText, repeat = string(b), false
	}
	if err := mf.check(); err != nil {
		return err
	}
	dev, m, err := mf.load(*f.asJSON)
	if err != nil {
		return err
	}
	defer dev.Close()
	filler, err := eval.NewFiller(m.Tok, fillerText, repeat, maxLen)
	if err != nil {
		return usagef("--filler: %v", err)
	}
	prompts, err := eval.PasskeyPrompts(m.Tok, filler, eval.PasskeyConfig{Lengths: lengths, Depths: depths, Trials: *trials, Digits: *digits, Seed: *seed})
	if err != nil {
		return usagef("%v", err)
	}
	maxDecode := 0
	for _, p := range prompts {
		maxDecode = max(maxDecode, p.Decode)
	}
	caches, err := ec.options(dev, m.H.ContextLength, maxLen+maxDecode, true)
	if err != nil {
		return err
	}
	begin := time.Now()
	results, err := measureCaches(&f, m, caches, "passkey", len(prompts), func(lm eval.LM, p eval.Progress) (eval.PasskeyResult, error) {
		return eval.RunPasskey(lm, m.Tok, prompts, p)
	})
	if err != nil {
		return err
	}
	n := ec.cacheSize(m.H.ContextLength)
	title := fmt.Sprintf("passkey accuracy, %s, N = %d, %d keys per cell", filepath.Base(mf.path), n, *trials)
	if err := f.plot(func(w io.Writer) error { return eval.PlotPasskey(w, title, lengths, depths, results) }); err != nil {
		return err
	}
	if *f.asJSON {
		cs := cachesJSON(results, caches, func(r eval.PasskeyResult) map[string]any {
			return map[string]any{"accuracy": r.Accuracy, "cells": r.Cells, "trials": r.Trials}
		})
		return json.NewEncoder(stdout).Encode(map[string]any{
			"eval": "passkey", "model": mf.path, "lengths": lengths, "depths": depths, "trials": *trials, "digits": *digits,
			"seed": *seed, "filler": *fillerPath, "caches": cs, "seconds": time.Since(begin).Seconds(),
		})
	}
	fmt.Fprintf(stdout, "passkey: %s, %d keys per cell of %d digits, N = %d (%.1f s)\n", filepath.Base(mf.path), *trials, *digits, n, time.Since(begin).Seconds())
	for _, r := range results {
		fmt.Fprintf(stdout, "\n%s: accuracy %.1f%%, mean NLL of the answer's tokens %.3f\n", r.Name, 100*r.Result.Accuracy, r.Result.KeyNLL)
		cells := map[[2]float64]eval.PasskeyCell{}
		for _, c := range r.Result.Cells {
			cells[[2]float64{float64(c.Length), c.Depth}] = c
		}
		fmt.Fprintf(stdout, "  %-14s", "depth \\ length")
		for _, l := range lengths {
			fmt.Fprintf(stdout, " %14d", l)
		}
		fmt.Fprintln(stdout)
		for _, d := range depths {
			fmt.Fprintf(stdout, "  %14.2f", d)
			for _, l := range lengths {
				c := cells[[2]float64{float64(l), d}]
				fmt.Fprintf(stdout, "  %4.0f%% (%5.2f)", 100*c.Accuracy, c.KeyNLL)
			}
			fmt.Fprintln(stdout)
		}
	}
	fmt.Fprintf(stdout, "\ncells: accuracy (mean NLL of the answer's tokens)\n")
	if *f.out != "" {
		fmt.Fprintf(stdout, "\nheatmap written to %s\n", *f.out)
	}
	return nil
}
