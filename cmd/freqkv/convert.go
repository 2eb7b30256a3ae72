package main

import (
	"fmt"
	"io"
	"os"

	"github.com/freqkv/freqkv/internal/outfile"
	"github.com/freqkv/freqkv/model/llama2c"
)

func init() {
	register(command{name: "convert", summary: "convert a llama2.c checkpoint + tokenizer.bin to GGUF", run: runConvert})
}

func runConvert(args []string) error {
	fs := newFlags("convert", "-m CHECKPOINT.bin --tokenizer TOKENIZER.bin -o OUT.gguf", "Writes a llama2.c checkpoint and its tokenizer as a GGUF file with llama.cpp's tensor names.")
	in := fs.StringP("model", "m", "", "llama2.c checkpoint")
	tokPath := fs.String("tokenizer", "", "llama2.c tokenizer.bin")
	out := fs.StringP("output", "o", "", "GGUF file to write")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *in == "" || *tokPath == "" || *out == "" {
		return usagef("need -m CHECKPOINT, --tokenizer TOKENIZER and -o OUT.gguf")
	}
	if err := outfile.Check([]outfile.Named{{Name: "-o", Path: *out}},
		[]outfile.Named{{Name: "-m", Path: *in}, {Name: "--tokenizer", Path: *tokPath}}); err != nil {
		return usagef("%v", err)
	}
	ck, err := llama2c.ReadCheckpoint(*in)
	if err != nil {
		return err
	}
	tok, err := llama2c.ReadTokenizer(*tokPath, ck.VocabSize)
	if err != nil {
		return err
	}
	if err := outfile.Write(*out, func(w io.Writer) error { return llama2c.Convert(w, ck, tok) }); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
	return nil
}
