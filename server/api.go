package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/freqkv/freqkv/chat"
)

// The OpenAI request and response shapes this server speaks; fields it
// does not know are ignored, as OpenAI's own API ignores unknown ones, but
// known fields must have the right type.

type content string

// UnmarshalJSON takes a string or an array of {"type":"text","text":...}
// parts (the newer message form).
func (c *content) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = content(s)
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("content must be a string or an array of text parts")
	}
	var sb strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return fmt.Errorf("content part of type %q is not supported: only text", p.Type)
		}
		sb.WriteString(p.Text)
	}
	*c = content(sb.String())
	return nil
}

type stopList []string

// UnmarshalJSON takes a string or an array of strings.
func (s *stopList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("stop must be a string or an array of strings")
	}
	*s = many
	return nil
}

// promptText is a completion prompt: a string or an array of one string.
type promptText string

func (p *promptText) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = promptText(s)
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil || len(many) != 1 {
		return errors.New("prompt must be a string (or an array of exactly one string)")
	}
	*p = promptText(many[0])
	return nil
}

type message struct {
	Role    string  `json:"role"`
	Content content `json:"content"`
}

// sampling are the fields both endpoints share.
type sampling struct {
	Model               string   `json:"model"`
	Stream              bool     `json:"stream"`
	Temperature         *float64 `json:"temperature"`
	TopP                *float64 `json:"top_p"`
	MaxTokens           *int     `json:"max_tokens"`
	MaxCompletionTokens *int     `json:"max_completion_tokens"`
	Stop                stopList `json:"stop"`
	Seed                *int64   `json:"seed"`
	N                   *int     `json:"n"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type chatRequest struct {
	sampling
	Messages []message `json:"messages"`
}

type completionRequest struct {
	sampling
	Prompt *promptText `json:"prompt"`
}

// apiError is an OpenAI-style error body.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

func badRequest(param, format string, a ...any) *apiError {
	e := &apiError{status: http.StatusBadRequest, Message: fmt.Sprintf(format, a...), Type: "invalid_request_error"}
	if param != "" {
		e.Param = &param
	}
	return e
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]any{"error": e})
}

// decode reads a JSON body of at most limit bytes into v.
func decode(r *http.Request, limit int64, v any) *apiError {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return badRequest("", "request body is over the server's limit of %d bytes", limit)
		}
		return badRequest("", "reading the request body: %v", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := strings.TrimPrefix(te.Field, "sampling.")
			return badRequest(field, "field %q must be of JSON type %s, not %s", field, jsonType(te.Type.Kind().String()), te.Value)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return badRequest("", "malformed JSON at byte %d: %v", se.Offset, err)
		}
		return badRequest("", "invalid request: %v", err)
	}
	return nil
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	case "ptr":
		return "the documented type"
	default:
		return "number"
	}
}

// check validates the sampling fields and resolves max_tokens.
func (s *sampling) check(defMax int) (int, *apiError) {
	if s.N != nil && *s.N != 1 {
		return 0, badRequest("n", "n must be 1: one choice per request")
	}
	if s.Temperature != nil && (*s.Temperature < 0 || *s.Temperature > 2) {
		return 0, badRequest("temperature", "temperature %v must be in [0, 2]", *s.Temperature)
	}
	if s.TopP != nil && (*s.TopP <= 0 || *s.TopP > 1) {
		return 0, badRequest("top_p", "top_p %v must be in (0, 1]", *s.TopP)
	}
	if len(s.Stop) > 4 {
		return 0, badRequest("stop", "at most 4 stop sequences, not %d", len(s.Stop))
	}
	max := defMax
	for _, m := range []struct {
		name string
		v    *int
	}{{"max_tokens", s.MaxTokens}, {"max_completion_tokens", s.MaxCompletionTokens}} {
		if m.v == nil {
			continue
		}
		if *m.v < 1 {
			return 0, badRequest(m.name, "%s %d must be at least 1", m.name, *m.v)
		}
		max = *m.v
	}
	return max, nil
}

func (r *chatRequest) messages() ([]chat.Message, *apiError) {
	if len(r.Messages) == 0 {
		return nil, badRequest("messages", "messages must hold at least one message")
	}
	out := make([]chat.Message, len(r.Messages))
	for i, m := range r.Messages {
		switch m.Role {
		case "system", "user", "assistant":
		case "developer":
			m.Role = "system"
		default:
			return nil, badRequest(fmt.Sprintf("messages[%d].role", i), "messages[%d].role %q: use system, user or assistant", i, m.Role)
		}
		out[i] = chat.Message{Role: m.Role, Content: string(m.Content)}
	}
	return out, nil
}
