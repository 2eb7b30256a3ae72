package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/freqkv/freqkv/eval"
)

func runRepeat(args []string) error {
	fs := newFlags("eval repeat", "-m MODEL --text FILE [--segment 64] [--gaps 0,128,512,1024] [--trials 8] [--cache full,window,freqkv] [-o curve.png] [--json]",
		"Repeat after a gap: a segment of real text, a gap of other text, the same segment again.\nReports the mean NLL of the segment (tokens after its first) at its first occurrence, at\nthe repeat, and at the same position in a control sequence where it was never seen\nbefore; gain = control - repeat is what remembering the segment is worth. A cache that\nstill holds the first occurrence can copy it; eviction cannot once the gap exceeds N.")
	var f evalFlags
	f.add(fs, "write the memory gain (control NLL - repeat NLL) against the gap, one line per cache, to this PNG")
	mf, ec := &f.mf, &f.ec
	var in inputFlags
	in.add(fs)
	segment := fs.Int("segment", 64, "tokens of the repeated segment")
	gapsFlag := fs.String("gaps", "0,64,128,256,512,1024", "comma-separated gaps in tokens")
	trials := fs.Int("trials", 8, "segments per gap")
	seed := fs.Uint64("seed", 1, "seed of where segments are taken")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	gaps, err := intList("gaps", *gapsFlag)
	if err != nil {
		return err
	}
	maxGap := 0
	for _, g := range gaps {
		if g < 0 {
			return usagef("--gaps: %d is negative", g)
		}
		maxGap = max(maxGap, g)
	}
	if *segment < 2 {
		return usagef("--segment %d must be at least 2", *segment)
	}
	if *trials < 1 {
		return usagef("--trials %d must be at least 1", *trials)
	}
	if err := checkPlotPath(*f.out, in.files(mf)); err != nil {
		return err
	}
	if _, err := ec.entries(); err != nil {
		return err
	}
	dev, m, ids, err := in.loadWithInput(mf, *f.asJSON)
	if err != nil {
		return err
	}
	defer dev.Close()
	if len(ids) > 0 && ids[0] == m.Tok.BOS() {
		ids = ids[1:] // sequences get their own BOS
	}
	seqs, err := eval.RepeatSequences(m.Tok, ids, eval.RepeatConfig{Segment: *segment, Gaps: gaps, Trials: *trials, Seed: *seed})
	if err != nil {
		return usagef("%v", err)
	}
	longest := 0
	for _, s := range seqs {
		longest = max(longest, len(s.Repeat))
	}
	caches, err := ec.options(dev, m.H.ContextLength, longest, true)
	if err != nil {
		return err
	}
	begin := time.Now()
	results, err := measureCaches(&f, m, caches, "repeat", len(seqs), func(lm eval.LM, p eval.Progress) ([]eval.RepeatPoint, error) {
		return eval.RunRepeat(lm, seqs, *segment, p)
	})
	if err != nil {
		return err
	}
	n := ec.cacheSize(m.H.ContextLength)
	title := fmt.Sprintf("repeat after a gap, %s, segment %d, N = %d", filepath.Base(mf.path), *segment, n)
	if err := f.plot(func(w io.Writer) error { return eval.PlotRepeat(w, title, n, results) }); err != nil {
		return err
	}
	if *f.asJSON {
		cs := cachesJSON(results, caches, func(r []eval.RepeatPoint) map[string]any { return map[string]any{"points": r} })
		return json.NewEncoder(stdout).Encode(map[string]any{
			"eval": "repeat", "model": mf.path, "segment": *segment, "gaps": gaps, "trials": *trials, "seed": *seed,
			"cache_size": n, "caches": cs, "seconds": time.Since(begin).Seconds(),
		})
	}
	fmt.Fprintf(stdout, "repeat after a gap: %s, segment %d tokens, %d trials per gap, N = %d (%.1f s)\n", filepath.Base(mf.path), *segment, *trials, n, time.Since(begin).Seconds())
	fmt.Fprintf(stdout, "mean NLL of the segment: first occurrence, repeat, control (same position, unseen); gain = control - repeat\n\n")
	fmt.Fprintf(stdout, "  %-8s %6s %10s  %6s %6s %6s %6s\n", "cache", "gap", "seg+gap", "first", "repeat", "ctrl", "gain")
	for _, r := range results {
		for _, p := range r.Result {
			rel := "< N"
			if p.Gap+*segment > n {
				rel = "> N"
			}
			fmt.Fprintf(stdout, "  %-8s %6d %10s  %6.3f %6.3f %6.3f %+6.3f\n", r.Name, p.Gap, rel, p.First, p.Repeat, p.Control, p.Gain)
		}
	}
	if *f.out != "" {
		fmt.Fprintf(stdout, "\nplot written to %s\n", *f.out)
	}
	return nil
}
