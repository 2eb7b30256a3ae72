package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/testvectors"
)

func init() {
	register(command{name: "vectors", summary: "run shader unit vectors on the GPU and judge them", run: runVectors})
}

func runVectors(args []string) error {
	fs := newFlags("vectors", "[PATH...] [--json] [--adapter A]", "Runs shader unit vectors (files or directories of *.json; default: the built-in set)\non the GPU, one line per vector; exits 1 if any fails or a file is unreadable.")
	asJSON := fs.Bool("json", false, "print one JSON object per vector")
	adapter := fs.String("adapter", "", "GPU adapter by index or name substring")
	kernel := fs.String("kernel", "", "run only vectors of this kernel family")
	if err := parse(fs, args); err != nil {
		return err
	}
	var vs []*testvectors.Vector
	var err error
	if fs.NArg() == 0 {
		vs, err = testvectors.Builtin()
	} else {
		vs, err = testvectors.Load(fs.Args()...)
	}
	if err != nil {
		return err
	}
	dev, err := engine.Open(engine.Options{Adapter: *adapter})
	if err != nil {
		return err
	}
	defer dev.Close()
	run := testvectors.NewRun(dev)
	defer run.Release()
	failed, ran := 0, 0
	enc := json.NewEncoder(stdout)
	for _, v := range vs {
		if *kernel != "" && v.Kernel != *kernel {
			continue
		}
		ran++
		res := run.Execute(v)
		ok := res.Err == nil && res.OK
		if !ok {
			failed++
		}
		if *asJSON {
			o := map[string]any{"name": v.Name, "kernel": v.Kernel, "shape": res.Shape, "max_abs": jsonNumber(res.MaxAbs), "max_rel": jsonNumber(res.MaxRel), "tolerance": res.Tol, "ok": ok}
			if res.Err != nil {
				o["error"] = res.Err.Error()
			}
			if err := enc.Encode(o); err != nil {
				return err
			}
			if err := stdout.flush(); err != nil {
				return err
			}
			continue
		}
		verdict := "ok"
		if res.Err != nil {
			verdict = "ERROR " + res.Err.Error()
		} else if !res.OK {
			verdict = "FAIL"
		}
		fmt.Fprintf(stdout, "%-12s %-44s %-34s max_abs %.2e max_rel %.2e tol %.2e  %s\n", v.Kernel, v.Name, res.Shape, res.MaxAbs, res.MaxRel, res.Tol, verdict)
		if err := stdout.flush(); err != nil { // one line per vector as it runs
			return err
		}
	}
	if ran == 0 {
		return fmt.Errorf("no vectors ran (kernel filter %q matched none)", *kernel)
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "%d vectors, %d failed, on %s\n", ran, failed, dev.Info.Name)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d vectors failed", failed, ran)
	}
	return nil
}

// jsonNumber is x for JSON, which has no NaN or infinities: those (a NaN output, an
// infinite error) become the strings "NaN", "+Inf" and "-Inf".
func jsonNumber(x float64) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return x
}
