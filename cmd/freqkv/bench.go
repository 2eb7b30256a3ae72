package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/synth"
	"github.com/schollz/progressbar/v3"
)

func init() {
	register(command{name: "bench", summary: "prefill/decode tok/s, KV bytes and compression time per cache policy", run: runBench})
}

var presets = map[string]func() synth.Spec{
	"tiny":         synth.Tiny,
	"medium":       synth.Medium,
	"llama2-7b-4l": synth.Llama2_7B_4L,
}

func parseInts(flag, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return nil, usagef("%s: %q is not a positive integer", flag, f)
		}
		out = append(out, v)
	}
	return out, nil
}

func runBench(args []string) error {
	fs := newFlags("bench", "[-m MODEL | --preset tiny|medium|llama2-7b-4l] [--ctx 512,2048,8192] [--cache full,freqkv] [--json]",
		"Fills a context to each --ctx length by prefill, then decodes --decode tokens greedily, for\neach cache policy side by side in one run: prefill and decode tok/s, KV bytes held vs a full\ncache, compressions, and GPU time of one compression. With no model it writes the preset\n(default tiny) as a synthetic GGUF in a temporary directory: no download needed.")
	var mf modelFlags
	mf.add(fs)
	mf.addLoRA(fs)
	preset := fs.String("preset", "tiny", "synthetic model when -m is not given: tiny, medium or llama2-7b-4l")
	weights := fs.String("weights", "", "weight type of the preset: "+weightTypeNames+" (default: the preset's)")
	ctxList := fs.String("ctx", "512,2048,8192", "context lengths to fill, comma-separated")
	decode := fs.Int("decode", 32, "tokens to decode after each fill")
	var cf cacheFlags
	cf.add(fs, "full,freqkv", true, "default: the model's trained context; a full cache always holds each --ctx plus --decode")
	compress := fs.String("compress", "spread", "freqkv compression schedules to compare: spread (accumulated over the steps before, no stalling step), whole (every layer in the step that needs it), or spread,whole")
	asJSON := fs.Bool("json", false, "print JSON")
	profile := fs.Bool("profile", false, "also print the GPU time per kernel of one decode step and of one prefill chunk (timestamp queries)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctxs, err := parseInts("--ctx", *ctxList)
	if err != nil {
		return err
	}
	policies, err := cf.policies()
	if err != nil {
		return err
	}
	var schedules []kvcache.Schedule
	for _, c := range strings.Split(*compress, ",") {
		switch strings.TrimSpace(c) {
		case "spread":
			schedules = append(schedules, kvcache.Spread)
		case "whole":
			schedules = append(schedules, kvcache.Whole)
		default:
			return usagef("--compress %q: use spread, whole or spread,whole", c)
		}
	}
	if *decode < 1 {
		return usagef("--decode %d must be at least 1", *decode)
	}
	name := mf.path
	if mf.path == "" {
		mk, ok := presets[*preset]
		if !ok {
			return usagef("--preset %q: use tiny, medium or llama2-7b-4l", *preset)
		}
		spec := mk()
		if *weights != "" {
			if spec.WeightType, err = parseWeightType(*weights); err != nil {
				return err
			}
		}
		dir, err := os.MkdirTemp("", "freqkv-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		mf.path = filepath.Join(dir, *preset+".gguf")
		if err := synth.Write(mf.path, spec); err != nil {
			return err
		}
		name = fmt.Sprintf("synthetic %s (%s weights)", *preset, spec.WeightType)
	} else if err := mf.check(); err != nil {
		return err
	}
	dev, m, err := mf.load(*asJSON)
	if err != nil {
		return err
	}
	defer dev.Close()
	// Every spec first, so a bad flag fails before any measuring.
	type run struct {
		tokens int
		spec   kvcache.Spec
	}
	var runs []run
	var header []string // the caches whose size does not follow --ctx
	for i, c := range ctxs {
		for _, k := range policies {
			var spec kvcache.Spec
			if k == kvcache.Full {
				spec, err = cf.sized(dev, k, c+*decode+1) // what is measured: every token of the run
			} else {
				spec, err = cf.spec(dev, k, m.H.ContextLength)
			}
			if err != nil {
				return err
			}
			if i == 0 && k != kvcache.Full {
				header = append(header, describe(spec))
			}
			if k != kvcache.FreqKV {
				runs = append(runs, run{c, spec})
				continue
			}
			for _, sch := range schedules {
				spec.Compress = sch
				runs = append(runs, run{c, spec})
			}
		}
	}
	var rows []measurement
	var bar *progressbar.ProgressBar
	if !*asJSON && stderrIsTerminal() {
		bar = progressbar.Default(int64(len(runs)), "bench")
	}
	for _, r := range runs {
		meas, err := measure(m, cf.options(r.spec), r.tokens, *decode, true)
		if !*profile {
			meas.DecodeKernels = nil
		}
		if err != nil {
			return fmt.Errorf("%v cache at %d tokens: %w", r.spec.Kind, r.tokens, cf.explain(r.spec, err))
		}
		if *profile && m.Device().Timestamps {
			if meas.PrefillKernels, meas.PrefillChunk, err = prefillProfile(m, cf.options(r.spec), r.tokens); err != nil {
				return fmt.Errorf("%v cache at %d tokens, profiled prefill: %w", r.spec.Kind, r.tokens, err)
			}
		}
		rows = append(rows, meas)
		if bar != nil {
			bar.Add(1)
		}
	}
	if bar != nil {
		bar.Finish()
		bar.Clear()
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"model": name, "device": dev.Info.Name, "weights_bytes": m.WeightBytes, "results": rows})
	}
	fmt.Fprintf(stdout, "model %s, %.1f MB of weights, on %s (%s)\n", name, float64(m.WeightBytes)/1e6, dev.Info.Name, dev.Info.Backend)
	for _, h := range header {
		fmt.Fprintf(stdout, "%s; ", h)
	}
	fmt.Fprintf(stdout, "%d decode tokens after each fill\n\n", *decode)
	tw := tabwriter.NewWriter(stdout, 2, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "context\tcache\tprefill tok/s\tdecode tok/s\tstep p50/p99/max ms\tcompressing step p50/max ms\tdispatches\tKV held\tfull KV\trows\tcompressions\tcompress ms\t")
	for _, r := range rows {
		cms := "-"
		if r.CompressGPUMs > 0 {
			cms = fmt.Sprintf("%.2f", r.CompressGPUMs)
		}
		steps := fmt.Sprintf("%.1f/%.1f/%.1f", r.StepP50Ms, r.StepP99Ms, r.StepMaxMs)
		csteps := "-"
		if r.CompressStepMaxMs > 0 {
			csteps = fmt.Sprintf("%.1f/%.1f", r.CompressStepP50Ms, r.CompressStepMaxMs)
		}
		fmt.Fprintf(tw, "%d\t%s\t%.1f\t%.1f\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\t\n", r.Tokens, r.Policy, r.PrefillTPS, r.DecodeTPS, steps, csteps, r.DecodeDispatches, humanBytes(r.KVBytes), humanBytes(r.FullKVBytes), r.Rows, r.Compressions, cms)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if *profile {
		for _, r := range rows {
			printKernels(fmt.Sprintf("one decode step at %d tokens, %s cache", r.Tokens, r.Policy), r.DecodeKernels)
			if r.PrefillKernels != nil {
				printKernels(fmt.Sprintf("one prefill chunk of %d tokens, %s cache", r.PrefillChunk, r.Policy), r.PrefillKernels)
			}
		}
	}
	return nil
}

// printKernels prints the 8 kernels with the most GPU time, and the total.
func printKernels(title string, kernels []engine.KernelTime) {
	fmt.Fprintf(stdout, "\n%s, GPU time by kernel:\n", title)
	var total float64
	calls := 0
	for _, k := range kernels {
		total += k.Total.Seconds() * 1e3
		calls += k.Calls
	}
	for i, k := range kernels {
		if i == 8 {
			break
		}
		fmt.Fprintf(stdout, "  %-40s %3d calls %8.2f ms %5.1f%%\n", k.Name, k.Calls, k.Total.Seconds()*1e3, 100*k.Total.Seconds()*1e3/total)
	}
	fmt.Fprintf(stdout, "  %-40s %3d calls %8.2f ms\n", "total", calls, total)
}

func parseWeightType(s string) (ggml.Type, error) {
	for _, t := range weightTypes {
		if strings.EqualFold(s, t.String()) {
			return t, nil
		}
	}
	return 0, usagef("--weights %q: use %s", s, weightTypeNames)
}

// weightTypes are the types synthetic models can be written in.
var weightTypes = []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0, ggml.Q4_0, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.IQ4_NL, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K}

const weightTypeNames = "f32, f16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q4_k, q5_k or q6_k"
