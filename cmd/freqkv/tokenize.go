package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/tokenizer"
)

func init() {
	register(command{name: "tokenize", summary: "text on stdin to token ids (or pieces)", run: runTokenize})
	register(command{name: "detokenize", summary: "token ids on stdin to text", run: runDetokenize})
}

// loadTokenizer reads only the tokenizer of a model (no device needed).
func loadTokenizer(mf *modelFlags) (tokenizer.Tokenizer, error) {
	if err := mf.check(); err != nil {
		return nil, err
	}
	f, err := mf.open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return llama.LoadTokenizer(f)
}

func runTokenize(args []string) error {
	fs := newFlags("tokenize", "-m MODEL [--no-bos] [--ids|--pieces] < text", "Encodes the text on stdin as llama.cpp does (special tokens written in the text are not parsed).")
	var mf modelFlags
	mf.add(fs)
	noBOS := fs.Bool("no-bos", false, "do not add BOS even if the model expects it")
	ids := fs.Bool("ids", false, "print ids, space-separated, on one line (the default)")
	pieces := fs.Bool("pieces", false, "print one 'id<TAB>piece' per line")
	maxInput := addMaxInput(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *ids && *pieces {
		return usagef("--ids and --pieces exclude each other")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q: the text is read from stdin", fs.Arg(0))
	}
	tok, err := loadTokenizer(&mf)
	if err != nil {
		return err
	}
	text, err := readStdin(*maxInput)
	if err != nil {
		return err
	}
	out, err := tok.Encode(string(text), tok.AddBOS() && !*noBOS)
	if err != nil {
		return err
	}
	w := stdout
	if *pieces {
		for _, id := range out {
			fmt.Fprintf(w, "%d\t%q\n", id, tok.Piece(id))
		}
		return nil
	}
	s := make([]string, len(out))
	for i, id := range out {
		s[i] = strconv.Itoa(int(id))
	}
	fmt.Fprintln(w, strings.Join(s, " "))
	return nil
}

func runDetokenize(args []string) error {
	fs := newFlags("detokenize", "-m MODEL < ids", "Decodes whitespace-separated token ids on stdin to text.")
	var mf modelFlags
	mf.add(fs)
	maxInput := addMaxInput(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q: the ids are read from stdin", fs.Arg(0))
	}
	tok, err := loadTokenizer(&mf)
	if err != nil {
		return err
	}
	in, err := readStdin(*maxInput)
	if err != nil {
		return err
	}
	ids, err := parseTokenIDs("stdin", in)
	if err != nil {
		return err
	}
	if err := checkTokenIDs("stdin", ids, tok.VocabSize()); err != nil {
		return err
	}
	text, err := tok.Decode(ids)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, text)
	return nil
}
