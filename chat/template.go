// Package chat renders conversations into prompts with a model's chat
// template (the Jinja text Hugging Face tokenizers carry, which GGUF files
// store as tokenizer.chat_template), through the gonja engine, with the
// helpers those templates call.
package chat

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"` // "system", "user" or "assistant"
	Content string `json:"content"`
}

// Template is a parsed chat template with the special-token texts it
// renders.
type Template struct {
	Name   string // built-in name, file path, or "gguf"
	Source string
	BOS    string // text of the BOS token ("" when none)
	EOS    string
	tpl    *exec.Template
}

// Names lists the built-in templates.
func Names() []string {
	var n []string
	for k := range builtinTemplates {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

// Builtin returns a built-in template's source.
func Builtin(name string) (string, bool) {
	s, ok := builtinTemplates[name]
	return s, ok
}

// Resolve picks a template: choice is a built-in name or a file holding a
// Jinja template; empty choice takes the model's own (fromModel), else the
// plain fallback.
func Resolve(choice, fromModel, bos, eos string) (*Template, error) {
	switch {
	case choice == "" && fromModel != "":
		return Parse("gguf", fromModel, bos, eos)
	case choice == "":
		return Parse("plain", builtinTemplates["plain"], bos, eos)
	}
	if src, ok := builtinTemplates[choice]; ok {
		return Parse(choice, src, bos, eos)
	}
	b, err := os.ReadFile(choice)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("chat template %q is neither a built-in (%s) nor a file", choice, strings.Join(Names(), ", "))
		}
		return nil, fmt.Errorf("chat template: %w", err)
	}
	return Parse(choice, string(b), bos, eos)
}

// Parse compiles Jinja source with the settings transformers uses
// (trim_blocks, lstrip_blocks).
func Parse(name, source, bos, eos string) (*Template, error) {
	cfg := config.New()
	cfg.TrimBlocks = true
	cfg.LeftStripBlocks = true
	cfg.KeepTrailingNewline = true
	// Templates from model files may not read files: the only template
	// the loader knows is this one.
	loader, err := loaders.NewMemoryLoader(map[string]string{"/chat_template": source})
	if err != nil {
		return nil, err
	}
	env := &exec.Environment{
		Context:           exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables).Update(helpers()),
		Filters:           builtins.Filters,
		Tests:             builtins.Tests,
		ControlStructures: builtins.ControlStructures,
		Methods:           builtins.Methods,
	}
	tpl, err := exec.NewTemplate("/chat_template", cfg, loader, env)
	if err != nil {
		return nil, fmt.Errorf("chat template %s: %s", name, oneLine(err))
	}
	return &Template{Name: name, Source: source, BOS: bos, EOS: eos, tpl: tpl}, nil
}

// helpers are the functions Hugging Face's renderer adds to templates.
func helpers() *exec.Context {
	return exec.NewContext(map[string]any{
		"raise_exception": func(msg string) (string, error) {
			return "", templateError(msg)
		},
		"strftime_now": func(format string) string { return strftime(time.Now(), format) },
	})
}

// templateError is what a template raised with raise_exception.
type templateError string

func (e templateError) Error() string { return string(e) }

// Render renders msgs; addGenerationPrompt appends the header of an
// assistant turn so the model writes the reply.
func (t *Template) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	list := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		list[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	ctx := exec.NewContext(map[string]any{
		"messages":              list,
		"add_generation_prompt": addGenerationPrompt,
		"bos_token":             t.BOS,
		"eos_token":             t.EOS,
	})
	out, err := t.tpl.ExecuteToString(ctx)
	if err != nil {
		var te templateError
		if errors.As(err, &te) {
			return "", fmt.Errorf("chat template %s: %s", t.Name, string(te))
		}
		return "", fmt.Errorf("chat template %s: %s", t.Name, oneLine(err))
	}
	return out, nil
}

// StopTexts are the token texts that end an assistant turn, for a
// template: EOS and the end-of-turn markers the template writes.
func (t *Template) StopTexts() []string {
	var out []string
	if t.EOS != "" {
		out = append(out, t.EOS)
	}
	for _, s := range endOfTurn {
		if strings.Contains(t.Source, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// strftime formats t with Python's strftime directives (the common ones).
func strftime(t time.Time, format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			b.WriteByte(format[i])
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			b.WriteString(t.Format("2006"))
		case 'y':
			b.WriteString(t.Format("06"))
		case 'm':
			b.WriteString(t.Format("01"))
		case 'd':
			b.WriteString(t.Format("02"))
		case 'e':
			b.WriteString(t.Format("_2"))
		case 'H':
			b.WriteString(t.Format("15"))
		case 'I':
			b.WriteString(t.Format("03"))
		case 'M':
			b.WriteString(t.Format("04"))
		case 'S':
			b.WriteString(t.Format("05"))
		case 'p':
			b.WriteString(t.Format("PM"))
		case 'B':
			b.WriteString(t.Format("January"))
		case 'b':
			b.WriteString(t.Format("Jan"))
		case 'A':
			b.WriteString(t.Format("Monday"))
		case 'a':
			b.WriteString(t.Format("Mon"))
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'Z':
			b.WriteString(t.Format("MST"))
		case 'z':
			b.WriteString(t.Format("-0700"))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}
