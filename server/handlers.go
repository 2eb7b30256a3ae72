package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/freqkv/freqkv/chat"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/llama"
)

// job is a validated request ready to run.
type job struct {
	chat      bool
	prompt    []int32
	maxTokens int
	sampler   llama.Sampler
	stop      []string
	stream    bool
	usage     bool // stream_options.include_usage
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if e := decode(r, s.cfg.MaxBody, &req); e != nil {
		s.fail(w, e)
		return
	}
	if s.cfg.Template == nil {
		s.fail(w, badRequest("", "this server has no chat template; use /v1/completions"))
		return
	}
	msgs, e := req.messages()
	if e != nil {
		s.fail(w, e)
		return
	}
	text, err := s.cfg.Template.Render(msgs, true)
	if err != nil {
		s.fail(w, badRequest("messages", "%v", err))
		return
	}
	tok := s.cfg.Model.Tok
	bos := tok.AddBOS() && (s.cfg.Template.BOS == "" || len(text) < len(s.cfg.Template.BOS) || text[:len(s.cfg.Template.BOS)] != s.cfg.Template.BOS)
	ids, err := tok.EncodeSpecial(text, bos)
	if err != nil {
		s.fail(w, badRequest("messages", "%v", err))
		return
	}
	j, e := s.newJob(&req.sampling, ids)
	if e != nil {
		s.fail(w, e)
		return
	}
	j.chat = true
	s.run(w, r, j)
}

func (s *Server) handleCompletion(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if e := decode(r, s.cfg.MaxBody, &req); e != nil {
		s.fail(w, e)
		return
	}
	if req.Prompt == nil {
		s.fail(w, badRequest("prompt", "prompt is required"))
		return
	}
	tok := s.cfg.Model.Tok
	// As freqkv generate does: the model's BOS, then the text; an empty
	// prompt is BOS alone.
	ids, err := tok.Encode(string(*req.Prompt), tok.AddBOS())
	if err != nil {
		s.fail(w, badRequest("prompt", "%v", err))
		return
	}
	if len(ids) == 0 && tok.BOS() >= 0 {
		ids = []int32{tok.BOS()}
	}
	j, e := s.newJob(&req.sampling, ids)
	if e != nil {
		s.fail(w, e)
		return
	}
	s.run(w, r, j)
}

func (s *Server) newJob(p *sampling, ids []int32) (*job, *apiError) {
	maxTokens, e := p.check(s.cfg.MaxTokens)
	if e != nil {
		return nil, e
	}
	if len(ids) == 0 {
		return nil, badRequest("", "the prompt is empty")
	}
	if len(ids) > s.cfg.MaxPrompt {
		return nil, badRequest("", "the prompt has %d tokens, over the server's limit of %d", len(ids), s.cfg.MaxPrompt)
	}
	if s.cfg.Cache.Cache.Kind == kvcache.Full {
		if c := s.sessions[0].ctx.Cache.View().Cap; len(ids)+maxTokens > c {
			return nil, badRequest("max_tokens", "the prompt's %d tokens plus max_tokens %d exceed the full cache's %d tokens; send less, or serve with a freqkv or window cache, which takes any length", len(ids), maxTokens, c)
		}
	}
	sm := llama.Sampler{Temperature: 1, TopP: 1}
	if p.Temperature != nil {
		sm.Temperature = *p.Temperature
	}
	if p.TopP != nil {
		sm.TopP = *p.TopP
	}
	if p.Seed != nil {
		sm.Seed = uint64(*p.Seed)
	} else {
		sm.Seed = rand.Uint64()
	}
	j := &job{prompt: ids, maxTokens: maxTokens, sampler: sm, stop: p.Stop, stream: p.Stream}
	if p.StreamOptions != nil {
		j.usage = p.StreamOptions.IncludeUsage
	}
	return j, nil
}

// run admits the job, generates and writes the response.
func (s *Server) run(w http.ResponseWriter, r *http.Request, j *job) {
	ctx := r.Context()
	if s.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	arrived := time.Now()
	se, e := s.acquire(ctx)
	if e != nil {
		if e.status == 499 {
			s.cancelled()
			return
		}
		s.fail(w, e)
		return
	}
	s.active.Add(1)
	var compressions int64
	defer func() { s.release(se, compressions) }()

	id := fmt.Sprintf("%s-%d", map[bool]string{true: "chatcmpl", false: "cmpl"}[j.chat], s.ids.Add(1))
	created := time.Now().Unix()
	var sse *sseWriter
	if j.stream {
		sse = newSSE(w)
		if j.chat {
			sse.event(chunk(id, created, s.cfg.ModelName, map[string]any{"role": "assistant", "content": ""}, nil))
		}
	}
	var last time.Time
	req := chat.Request{
		Prompt: j.prompt, MaxTokens: j.maxTokens, Sampler: j.sampler, StopIDs: s.stopIDs, Stop: j.stop,
		After: j.prompt[len(j.prompt)-1],
		OnToken: func(int32) {
			now := time.Now()
			s.metrics.mu.Lock()
			if last.IsZero() {
				s.metrics.firstToken.observe(now.Sub(arrived))
			} else {
				s.metrics.interToken.observe(now.Sub(last))
			}
			s.metrics.mu.Unlock()
			last = now
		},
	}
	if j.chat {
		req.Stop = append(append([]string(nil), j.stop...), s.stopTexts...)
	}
	decoding := false
	if s.batch != nil {
		req.Decode = s.decoder(se, &decoding)
	}
	res, err := chat.Generate(ctx, se.ctx, s.cfg.Model.Tok, &s.dev, s.cfg.Cache.MaxChunk, req, func(piece string) error {
		if sse == nil {
			return nil
		}
		var ev any
		if j.chat {
			ev = chunk(id, created, s.cfg.ModelName, map[string]any{"content": piece}, nil)
		} else {
			ev = textChunk(id, created, s.cfg.ModelName, piece, nil)
		}
		if err := sse.event(ev); err != nil {
			return errClientGone
		}
		return nil
	})
	if decoding {
		s.decoding.Add(-1)
	}
	compressions = int64(se.ctx.Cache.Stats().Compressions)
	s.metrics.mu.Lock()
	s.metrics.promptToks += int64(res.PromptTokens)
	s.metrics.genToks += int64(res.Tokens)
	s.metrics.mu.Unlock()
	usage := map[string]int{"prompt_tokens": res.PromptTokens, "completion_tokens": res.Tokens, "total_tokens": res.PromptTokens + res.Tokens}
	if err != nil {
		switch {
		case errors.Is(err, context.Canceled) || errors.Is(err, errClientGone):
			s.cancelled()
			return
		case errors.Is(err, context.DeadlineExceeded):
			s.cancelled()
			e = &apiError{status: http.StatusGatewayTimeout, Message: fmt.Sprintf("the request ran past the server's timeout of %v", s.cfg.Timeout), Type: "server_error"}
		default:
			e = &apiError{status: http.StatusInternalServerError, Message: err.Error(), Type: "server_error"}
		}
		if sse != nil {
			sse.event(map[string]any{"error": e})
			sse.done()
			return
		}
		s.fail(w, e)
		return
	}
	if sse != nil {
		if j.chat {
			sse.event(chunk(id, created, s.cfg.ModelName, map[string]any{}, &res.Finish))
		} else {
			sse.event(textChunk(id, created, s.cfg.ModelName, "", &res.Finish))
		}
		if j.usage {
			sse.event(map[string]any{"id": id, "object": objectName(j.chat, true), "created": created, "model": s.cfg.ModelName, "choices": []any{}, "usage": usage})
		}
		sse.done()
		return
	}
	var choice map[string]any
	if j.chat {
		choice = map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": res.Text}, "finish_reason": res.Finish, "logprobs": nil}
	} else {
		choice = map[string]any{"index": 0, "text": res.Text, "finish_reason": res.Finish, "logprobs": nil}
	}
	writeJSON(w, map[string]any{"id": id, "object": objectName(j.chat, false), "created": created, "model": s.cfg.ModelName,
		"choices": []any{choice}, "usage": usage})
}

func (s *Server) cancelled() {
	s.metrics.mu.Lock()
	s.metrics.cancelled++
	s.metrics.mu.Unlock()
}

func objectName(isChat, stream bool) string {
	switch {
	case isChat && stream:
		return "chat.completion.chunk"
	case isChat:
		return "chat.completion"
	default:
		return "text_completion"
	}
}

func chunk(id string, created int64, model string, delta map[string]any, finish *string) map[string]any {
	return map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
		"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": nil}}}
}

func textChunk(id string, created int64, model, text string, finish *string) map[string]any {
	return map[string]any{"id": id, "object": "text_completion", "created": created, "model": model,
		"choices": []any{map[string]any{"index": 0, "text": text, "finish_reason": finish, "logprobs": nil}}}
}
