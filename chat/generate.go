package chat

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/tokenizer"
)

// Request is one generation: a prompt already tokenized, and when to stop.
type Request struct {
	Prompt    []int32
	MaxTokens int
	Sampler   llama.Sampler
	StopIDs   map[int32]bool // tokens that end the reply (not emitted)
	Stop      []string       // texts that end the reply (not emitted)
	// After is the token the reply continues (the prompt's last, normally),
	// so the decoder renders the first piece's leading space as it should.
	After int32
	// OnToken, if set, is called with each sampled token (for metrics).
	OnToken func(int32)
	// Decode, if set, runs a decode step (feed tok, sample the next) in
	// place of the context's own Next under lock: a server batches the
	// steps of its sessions through it.
	Decode func(tok int32, s *llama.Sampler, history []int32) (int32, error)
}

// Result says how a generation ended.
type Result struct {
	Text         string
	PromptTokens int
	Tokens       int    // generated, stop token included
	Finish       string // "stop" or "length"
	Last         int32  // the last token sampled (not fed to the context)
	Prefill      time.Duration
	Decode       time.Duration
}

// Generate runs req on lctx, calling emit with each piece of text as soon
// as no stop text can begin in it. lock, when set, is held around each
// device step, so sessions sharing a device take turns step by step; ctx
// cancels between steps. chunk bounds the prompt tokens of one step.
func Generate(ctx context.Context, lctx *llama.Context, tok tokenizer.Tokenizer, lock sync.Locker, chunk int, req Request, emit func(string) error) (Result, error) {
	res := Result{PromptTokens: len(req.Prompt)}
	if len(req.Prompt) == 0 {
		return res, fmt.Errorf("empty prompt")
	}
	if req.MaxTokens < 1 {
		return res, fmt.Errorf("max tokens %d must be at least 1", req.MaxTokens)
	}
	if chunk < 1 {
		chunk = 256
	}
	if lock == nil {
		lock = noLock{}
	}
	step := func(f func() error) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		lock.Lock()
		defer lock.Unlock()
		return f()
	}
	history := append([]int32(nil), req.Prompt...)
	start := time.Now()
	p := req.Prompt
	for len(p) > chunk {
		if err := step(func() error { return lctx.Prefill(p[:chunk]) }); err != nil {
			return res, err
		}
		p = p[chunk:]
	}
	var next int32
	if err := step(func() (err error) { next, err = lctx.Next(p, &req.Sampler, history); return }); err != nil {
		return res, err
	}
	res.Prefill = time.Since(start)
	start = time.Now()

	dec := tok.NewDecoder()
	if req.After >= 0 {
		dec.Add(req.After) // primes the decoder; its text was the prompt's
	}
	var gen strings.Builder
	sent := 0
	maxStop := 0
	for _, s := range req.Stop {
		maxStop = max(maxStop, len(s))
	}
	flush := func(upto int) error {
		if upto > sent {
			piece := gen.String()[sent:upto]
			sent = upto
			return emit(piece)
		}
		return nil
	}
	res.Finish = "length"
	for {
		res.Tokens++
		res.Last = next
		if req.OnToken != nil {
			req.OnToken(next)
		}
		history = append(history, next)
		if req.StopIDs[next] {
			res.Finish = "stop"
			break
		}
		piece, err := dec.Add(next)
		if err != nil {
			return res, err
		}
		gen.WriteString(piece)
		text := gen.String()
		if at, ok := findStop(text, sent, maxStop, req.Stop); ok {
			res.Text = text[:at]
			res.Finish = "stop"
			if err := flush(at); err != nil {
				return res, err
			}
			res.Decode = time.Since(start)
			return res, nil
		}
		if err := flush(len(text) - heldBack(text[sent:], req.Stop)); err != nil {
			return res, err
		}
		if res.Tokens >= req.MaxTokens {
			break
		}
		if req.Decode != nil {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if next, err = req.Decode(next, &req.Sampler, history); err != nil {
				return res, err
			}
			continue
		}
		if err := step(func() (err error) { next, err = lctx.Next([]int32{next}, &req.Sampler, history); return }); err != nil {
			return res, err
		}
	}
	gen.WriteString(dec.Flush())
	res.Text = gen.String()
	err := flush(len(res.Text))
	res.Decode = time.Since(start)
	return res, err
}

type noLock struct{}

func (noLock) Lock()   {}
func (noLock) Unlock() {}

// findStop finds the first stop text that ends after sent (earlier text
// was searched before).
func findStop(text string, sent, maxStop int, stops []string) (int, bool) {
	from := max(0, sent-maxStop)
	best := -1
	for _, s := range stops {
		if s == "" {
			continue
		}
		if i := strings.Index(text[from:], s); i >= 0 && (best < 0 || from+i < best) {
			best = from + i
		}
	}
	return best, best >= 0
}

// heldBack is the length of the longest suffix of s that begins a stop
// text: it is kept until the next tokens show whether the stop follows.
func heldBack(s string, stops []string) int {
	most := 0
	for _, st := range stops {
		for n := min(len(st)-1, len(s)); n > most; n-- {
			if strings.HasSuffix(s, st[:n]) {
				most = n
				break
			}
		}
	}
	return most
}
