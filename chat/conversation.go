package chat

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/tokenizer"
)

// Conversation is a chat running on one context whose cache keeps every
// turn: each turn renders the whole conversation with the template and
// feeds only the text the cache has not seen (as llama.cpp's interactive
// chat does), so a FreqKV cache carries it past the model's context
// without re-reading or truncating anything.
type Conversation struct {
	Template *Template
	Tok      tokenizer.Tokenizer
	Ctx      *llama.Context
	Lock     sync.Locker // held around device steps; nil when the device is not shared
	Chunk    int         // prompt tokens per step
	Messages []Message

	fed     string // rendered text whose tokens are in the cache
	pending int32  // a sampled token not yet fed (after a reply cut by length), or -1
	stopIDs map[int32]bool
	stops   []string
}

// NewConversation starts a conversation, with a system prompt when system
// is not empty.
func NewConversation(tpl *Template, tok tokenizer.Tokenizer, lctx *llama.Context, system string) *Conversation {
	c := &Conversation{Template: tpl, Tok: tok, Ctx: lctx, pending: -1}
	c.stopIDs, c.stops = StopTokens(tpl, tok)
	if system != "" {
		c.Messages = []Message{{Role: "system", Content: system}}
	}
	return c
}

// StopTokens are the ids that end an assistant turn in tok's vocabulary
// (EOS and the template's end-of-turn tokens that are single tokens), and
// the texts of those that are not tokens (stopped on as text).
func StopTokens(tpl *Template, tok tokenizer.Tokenizer) (map[int32]bool, []string) {
	ids := map[int32]bool{}
	if eos := tok.EOS(); eos >= 0 {
		ids[eos] = true
	}
	var texts []string
	for _, s := range tpl.StopTexts() {
		enc, err := tok.EncodeSpecial(s, false)
		if err == nil && len(enc) == 1 && tok.Piece(enc[0]) == s {
			ids[enc[0]] = true
		} else if s != tpl.EOS && s != tpl.BOS {
			texts = append(texts, s)
		}
	}
	return ids, texts
}

// Reset forgets every turn but the system prompt and empties the cache.
func (c *Conversation) Reset() {
	c.Ctx.Reset()
	c.fed, c.pending = "", -1
	if len(c.Messages) > 0 && c.Messages[0].Role == "system" {
		c.Messages = c.Messages[:1]
	} else {
		c.Messages = nil
	}
}

// Restore replaces the conversation with msgs and feeds them to an empty
// cache (the cache state is rebuilt, not loaded).
func (c *Conversation) Restore(ctx context.Context, msgs []Message) error {
	c.Ctx.Reset()
	c.fed, c.pending, c.Messages = "", -1, nil
	if len(msgs) == 0 {
		return nil
	}
	text, err := c.Template.Render(msgs, false)
	if err != nil {
		return err
	}
	ids, err := c.encode(text)
	if err != nil {
		return err
	}
	for len(ids) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(len(ids), max(c.Chunk, 1))
		if err := c.step(func() error { return c.Ctx.Prefill(ids[:n]) }); err != nil {
			return err
		}
		ids = ids[n:]
	}
	c.Messages, c.fed = append([]Message(nil), msgs...), text
	return nil
}

func (c *Conversation) step(f func() error) error {
	if c.Lock != nil {
		c.Lock.Lock()
		defer c.Lock.Unlock()
	}
	return f()
}

// encode tokenizes rendered text, parsing special tokens; BOS is added
// at the start of a sequence when the model wants one and the template
// did not write it.
func (c *Conversation) encode(text string) ([]int32, error) {
	bos := c.Ctx.Tokens() == 0 && c.Tok.AddBOS() && (c.Template.BOS == "" || !strings.HasPrefix(text, c.Template.BOS))
	return c.Tok.EncodeSpecial(text, bos)
}

// Turn adds the user's message, feeds what is new and streams the reply
// through emit; the reply joins the conversation.
func (c *Conversation) Turn(ctx context.Context, user string, maxTokens int, s llama.Sampler, emit func(string) error) (Result, error) {
	msgs := append(append([]Message(nil), c.Messages...), Message{Role: "user", Content: user})
	full, err := c.Template.Render(msgs, true)
	if err != nil {
		return Result{}, err
	}
	// The text already in the cache is normally a prefix of the new
	// rendering; where the template rewrote the last reply (trimming it,
	// say), only what differs after the common part is fed.
	delta := full[commonPrefix(full, c.fed):]
	ids, err := c.encode(delta)
	if err != nil {
		return Result{}, err
	}
	if c.pending >= 0 {
		ids = append([]int32{c.pending}, ids...)
	}
	if len(ids) == 0 {
		return Result{}, fmt.Errorf("nothing new to say: the message is empty")
	}
	req := Request{Prompt: ids, MaxTokens: maxTokens, Sampler: s, StopIDs: c.stopIDs, Stop: c.stops, After: ids[len(ids)-1]}
	res, err := Generate(ctx, c.Ctx, c.Tok, c.Lock, c.Chunk, req, emit)
	if err != nil {
		return res, err
	}
	c.pending = -1
	if res.Finish == "length" {
		c.pending = res.Last
	}
	c.Messages = append(msgs, Message{Role: "assistant", Content: strings.TrimSpace(res.Text)})
	c.fed = full + res.Text
	return res, nil
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
