package main

import (
	"fmt"
	"io"
	"os"

	"github.com/freqkv/freqkv/internal/outfile"
	"github.com/freqkv/freqkv/model/synth"
)

func init() {
	register(command{name: "synth", args: "--preset NAME -o FILE", summary: "write a synthetic model (random weights) as GGUF", run: runSynth})
}

func runSynth(args []string) error {
	fs := newFlags("synth", "--preset tiny|medium|llama2-7b-4l [--weights TYPE] -o FILE", `Writes one of bench's synthetic models (random weights, llama.cpp's GGUF layout and a
minimal SentencePiece vocabulary) to a file, so other engines can run the same model:
bench/peer compares freqkv and llama.cpp on these files.`)
	preset := fs.String("preset", "medium", "model shape: tiny, medium or llama2-7b-4l")
	weights := fs.String("weights", "", "weight type: "+weightTypeNames+" (default: the preset's)")
	seed := fs.Uint64("seed", 1, "weights are a function of the seed and each tensor's name")
	out := fs.StringP("output", "o", "", "GGUF file to write")
	if err := parse(fs, args); err != nil {
		return err
	}
	mk, ok := presets[*preset]
	if !ok {
		return usagef("--preset %q: use tiny, medium or llama2-7b-4l", *preset)
	}
	if *out == "" {
		return usagef("-o FILE is required")
	}
	spec := mk()
	spec.Seed = *seed
	if *weights != "" {
		t, err := parseWeightType(*weights)
		if err != nil {
			return err
		}
		spec.WeightType = t
	}
	if err := spec.Validate(); err != nil {
		return usagef("%v", err)
	}
	if err := outfile.Check([]outfile.Named{{Name: "-o", Path: *out}}, nil); err != nil {
		return usagef("%v", err)
	}
	if err := outfile.Write(*out, func(w io.Writer) error { return synth.WriteTo(w, spec) }); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
	return nil
}
