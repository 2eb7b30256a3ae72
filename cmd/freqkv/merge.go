package main

import (
	"fmt"
	"io"
	"os"

	"github.com/freqkv/freqkv/internal/outfile"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/lora"
)

func init() {
	register(command{name: "merge", summary: "merge a LoRA adapter into a model and write it as one GGUF file", run: runMerge})
}

func runMerge(args []string) error {
	fs := newFlags("merge", "-m BASE --lora ADAPTER.gguf [--lora-scale X] -o OUT.gguf",
		"Writes BASE with the adapter merged into its weights (W + scale*(alpha/rank)*B*A; full tensors\n"+
			"replace the base's), as a plain model any GGUF reader loads. F32 and F16 matrices keep their\n"+
			"type; quantised ones that the adapter changes are written as F16 (see docs/finetune.md).")
	var mf modelFlags
	fs.StringVarP(&mf.path, "model", "m", "", "base model: GGUF, or a llama2.c checkpoint (with --tokenizer)")
	fs.StringVar(&mf.tokenizer, "tokenizer", "", "llama2.c tokenizer.bin, for llama2.c checkpoints")
	mf.addLoRA(fs)
	out := fs.StringP("output", "o", "", "GGUF file to write")
	if err := parse(fs, args); err != nil {
		return err
	}
	if mf.path == "" || mf.lora.path == "" || *out == "" {
		return usagef("need -m BASE, --lora ADAPTER.gguf and -o OUT.gguf")
	}
	if err := mf.check(); err != nil {
		return err
	}
	if err := outfile.Check([]outfile.Named{{Name: "-o", Path: *out}}, mf.files()); err != nil {
		return usagef("%v", err)
	}
	a, err := lora.Open(mf.lora.path)
	if err != nil {
		return fmt.Errorf("--lora %w", err)
	}
	base, err := llama.Open(mf.path, llama.LoadOptions{Tokenizer: mf.tokenizer}) // unmerged: WriteMerged merges
	if err != nil {
		return err
	}
	defer base.Close()
	var notes []string
	err = outfile.Write(*out, func(w io.Writer) error {
		var err error
		notes, err = lora.WriteMerged(w, base, a, mf.lora.scale)
		return err
	})
	if err != nil {
		return fmt.Errorf("--lora %s: %w", mf.lora.path, err)
	}
	for _, n := range notes {
		fmt.Fprintf(os.Stderr, "lora: %s\n", n)
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%s merged at scale %g)\n", *out, mf.lora.path, mf.lora.scale)
	return nil
}
