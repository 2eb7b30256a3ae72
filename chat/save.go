package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
)

// Saved is a conversation, and optionally its cache, as /save writes it.
type Saved struct {
	Version  int       `json:"version"`
	Model    string    `json:"model"`
	Template string    `json:"template"`
	Messages []Message `json:"messages"`
	// Fed and Pending are the conversation's position in the cache; with
	// Cache they restore it exactly.
	Fed     string         `json:"fed,omitempty"`
	Pending int32          `json:"pending,omitempty"`
	Cache   *kvcache.State `json:"-"`
}

// Save captures the conversation, with its cache state when withCache.
func (c *Conversation) Save(model string, withCache bool) (*Saved, error) {
	s := &Saved{Version: 1, Model: model, Template: c.Template.Name, Messages: append([]Message(nil), c.Messages...)}
	if withCache {
		st, err := c.Ctx.SaveState()
		if err != nil {
			return nil, err
		}
		s.Cache, s.Fed, s.Pending = st, c.fed, c.pending
	}
	return s, nil
}

// Load replaces the conversation: with a cache state it resumes exactly,
// without one it feeds the messages again (Restore).
func (c *Conversation) Load(s *Saved) error {
	for i, m := range s.Messages {
		if m.Role != "system" && m.Role != "user" && m.Role != "assistant" {
			return fmt.Errorf("message %d has role %q; want system, user or assistant", i+1, m.Role)
		}
	}
	if s.Cache == nil {
		return c.Restore(context.Background(), s.Messages)
	}
	if err := c.Ctx.LoadState(s.Cache); err != nil {
		c.Ctx.Reset()
		c.fed, c.pending, c.Messages = "", -1, nil
		return err
	}
	c.Messages, c.fed, c.pending = append([]Message(nil), s.Messages...), s.Fed, s.Pending
	return nil
}

// GGUF keys of a saved conversation with its cache.
const (
	keyConversation = "freqkv.chat.conversation" // the Saved fields, JSON
	keyState        = "freqkv.chat.cache"        // the State without its matrices, JSON
)

// WriteGGUF writes s with its cache as a GGUF file: the conversation and the
// cache's bookkeeping as metadata, each K and V matrix as a tensor.
func (s *Saved) WriteGGUF(w io.Writer) error {
	if s.Cache == nil {
		return fmt.Errorf("no cache state to write")
	}
	conv, err := json.Marshal(s)
	if err != nil {
		return err
	}
	meta := *s.Cache
	meta.Matrices = nil
	state, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	typ := ggml.F32
	if s.Cache.Spec.Storage == engine.F16 {
		typ = ggml.F16
	}
	cols := uint64(s.Cache.Geometry.KVHeads * s.Cache.Geometry.HeadDim)
	var tensors []gguf.WriteTensor
	for i, m := range s.Cache.Matrices {
		rows := uint64(len(m)) / cols / uint64(typ.BlockBytes())
		tensors = append(tensors, gguf.WriteTensor{Name: fmt.Sprintf("kv.%d", i), Dims: []uint64{cols, rows}, Type: typ, Data: m})
	}
	return gguf.Write(w, []gguf.KV{
		{Key: "general.architecture", Value: "freqkv-chat"},
		{Key: keyConversation, Value: string(conv)},
		{Key: keyState, Value: string(state)},
	}, tensors)
}

// ReadSaved reads what /save wrote: JSON (the conversation) or GGUF (with
// the cache).
func ReadSaved(path string) (*Saved, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Saved
	if len(b) >= 4 && string(b[:4]) == "GGUF" {
		f, err := gguf.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		conv, err1 := f.String(keyConversation)
		state, err2 := f.String(keyState)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s is a GGUF file but not a conversation saved by chat", path)
		}
		var st kvcache.State
		if err := json.Unmarshal([]byte(conv), &s); err != nil {
			return nil, fmt.Errorf("%s: conversation: %w", path, err)
		}
		if err := json.Unmarshal([]byte(state), &st); err != nil {
			return nil, fmt.Errorf("%s: cache state: %w", path, err)
		}
		for i := range f.Tensors {
			t, ok := f.Tensor(fmt.Sprintf("kv.%d", i))
			if !ok {
				return nil, fmt.Errorf("%s: tensor kv.%d is missing", path, i)
			}
			data, err := f.TensorData(t)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			st.Matrices = append(st.Matrices, append([]byte(nil), data...))
		}
		s.Cache = &st
	} else if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s is not a conversation saved by chat: %v", path, err)
	}
	if s.Version != 1 {
		return nil, fmt.Errorf("%s: version %d of the saved conversation is not known; want 1", path, s.Version)
	}
	return &s, nil
}
