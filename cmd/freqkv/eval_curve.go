package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/freqkv/freqkv/eval"
)

func runCurve(args []string) error {
	fs := newFlags("eval ppl-curve", "-m MODEL --text FILE [--ctx 2048] [--bucket 256] [--stride 1024] [--windows 8] [--cache full,window,freqkv] [-o curve.png] [--json]",
		"Mean NLL per position bucket over windows of --ctx tokens every --stride tokens of the\ntext (perplexity's protocol), for each cache in the same run: where does each policy\nstart to lose? Position = index of the predicting token within its window.")
	var f evalFlags
	f.add(fs, "write mean NLL per bucket, one line per cache, to this PNG")
	mf, ec := &f.mf, &f.ec
	var in inputFlags
	in.add(fs)
	window := fs.Int("ctx", 2048, "window length in tokens")
	bucket := fs.Int("bucket", 256, "positions per bucket")
	stride := fs.Int("stride", 0, "tokens between window starts (default: --ctx)")
	maxWindows := fs.Int("windows", 8, "at most this many windows (0: all the text allows)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *stride == 0 {
		*stride = *window
	}
	cfg := eval.CurveConfig{Window: *window, Stride: *stride, Bucket: *bucket, MaxWindows: *maxWindows}
	if *window < 1 || *bucket < 1 || *stride < 1 || *maxWindows < 0 {
		return usagef("--ctx, --bucket and --stride must be positive and --windows not negative")
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
	starts, err := eval.CurveWindows(len(ids), cfg)
	if err != nil {
		return usagef("%v", err)
	}
	caches, err := ec.options(dev, m.H.ContextLength, *window, true)
	if err != nil {
		return err
	}
	begin := time.Now()
	results, err := measureCaches(&f, m, caches, "ppl-curve", len(starts), func(lm eval.LM, p eval.Progress) ([]eval.Bucket, error) {
		return eval.PositionCurve(lm, ids, starts, cfg, p)
	})
	if err != nil {
		return err
	}
	n := ec.cacheSize(m.H.ContextLength)
	title := fmt.Sprintf("NLL by position, %s, %d windows of %d, N = %d", filepath.Base(mf.path), len(starts), *window, n)
	if err := f.plot(func(w io.Writer) error { return eval.PlotCurve(w, title, n, results) }); err != nil {
		return err
	}
	if *f.asJSON {
		cs := cachesJSON(results, caches, func(r []eval.Bucket) map[string]any { return map[string]any{"buckets": r} })
		return json.NewEncoder(stdout).Encode(map[string]any{
			"eval": "ppl-curve", "model": mf.path, "window": *window, "stride": *stride, "bucket": *bucket, "windows": len(starts),
			"cache_size": n, "caches": cs, "seconds": time.Since(begin).Seconds(),
		})
	}
	fmt.Fprintf(stdout, "NLL by position: %s, %d windows of %d tokens every %d, N = %d (%.1f s)\n\n", filepath.Base(mf.path), len(starts), *window, *stride, n, time.Since(begin).Seconds())
	fmt.Fprintf(stdout, "  %-13s", "positions")
	widths := make([]int, len(results))
	for i, r := range results {
		widths[i] = max(9, len(r.Name))
		fmt.Fprintf(stdout, " %*s", widths[i], r.Name)
	}
	fmt.Fprintln(stdout)
	for b := range results[0].Result {
		bk := results[0].Result[b]
		fmt.Fprintf(stdout, "  %5d-%-7d", bk.Start, bk.End)
		for i, r := range results {
			fmt.Fprintf(stdout, " %*.4f", widths[i], r.Result[b].MeanNLL)
		}
		fmt.Fprintln(stdout)
	}
	if *f.out != "" {
		fmt.Fprintf(stdout, "\nplot written to %s\n", *f.out)
	}
	return nil
}
