package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/freqkv/freqkv/chat"
	"github.com/freqkv/freqkv/internal/outfile"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/llama"
	"golang.org/x/term"
)

func init() {
	register(command{name: "chat", summary: "chat with a model on the terminal, past its context at fixed memory", run: runChat, ownSignals: true})
}

const chatHelp = `commands: /reset (forget the conversation), /save FILE (FILE.gguf: with the KV cache), /load FILE, /stats, /help, /quit
end a line with \ to continue the message on the next line`

func runChat(args []string) error {
	fs := newFlags("chat", "[-m MODEL] [--system TEXT] [--chat-template NAME|FILE] [cache and sampling flags]",
		"An interactive chat: type a message, the reply streams back. The KV cache keeps every turn\n"+
			"at a fixed size (default freqkv, N = the model's trained context), so the conversation runs\n"+
			"past the model's context without truncation; it says so once when it does.\n"+
			"Without -m it chats with the embedded stories260K, a story model with no chat template:\n"+
			"the plain template joins the turns into one story that you and the model write in turn.\n"+
			"Without a terminal it reads one message per line from stdin and prints each reply followed\nby a newline.\n\n"+chatHelp)
	var mf modelFlags
	mf.add(fs)
	system := fs.String("system", "", "system prompt")
	tplFlag := fs.String("chat-template", "", "chat template: a built-in ("+strings.Join(chat.Names(), ", ")+") or a Jinja file (default: the model's own, else plain)")
	n := fs.IntP("n-predict", "n", 256, "most tokens per reply")
	var cf cacheFlags
	cf.add(fs, "freqkv", false, "default: the model's trained context")
	var sf samplerFlags
	sf.add(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *n < 1 {
		return usagef("-n %d must be at least 1", *n)
	}
	if err := checkSampler(&sf.s); err != nil {
		return err
	}
	cm, err := loadChatModel(&mf, &cf, *tplFlag, false)
	if err != nil {
		return err
	}
	defer cm.dev.Close()
	m, tpl, spec := cm.m, cm.tpl, cm.spec
	opts := cf.options(spec)
	lctx, err := cf.newContext(m, opts)
	if err != nil {
		return err
	}
	defer lctx.Release()

	interactive := term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
	conv := chat.NewConversation(tpl, m.Tok, lctx, *system)
	conv.Chunk = opts.MaxChunk
	s := &chatSession{conv: conv, m: m, opts: opts, model: mf.name(), out: bufio.NewWriter(os.Stdout), interactive: interactive, inputs: mf.files()}
	if interactive {
		fmt.Fprintf(os.Stderr, "chatting with %s (template %s, cache %s); /help for commands, Ctrl-D to quit\n", mf.name(), tpl.Name, spec.Kind)
	}
	return s.loop(os.Stdin, *n, sf.s)
}

type chatSession struct {
	conv        *chat.Conversation
	m           *llama.Model
	opts        llama.ContextOptions
	model       string
	out         *bufio.Writer
	interactive bool
	noted       bool            // the past-the-context note was shown
	inputs      []outfile.Named // files /save must not overwrite
}

func (s *chatSession) loop(in io.Reader, n int, sampler llama.Sampler) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for {
		if s.interactive {
			fmt.Fprint(os.Stderr, "> ")
		}
		msg, ok := readMessage(sc, s.interactive)
		if !ok {
			break
		}
		if strings.TrimSpace(msg) == "" {
			continue
		}
		if strings.HasPrefix(msg, "/") {
			quit, err := s.command(msg)
			if err != nil && !s.interactive {
				return err
			}
			if err != nil {
				// On a terminal a bad command is reported and the chat goes on.
				fmt.Fprintf(os.Stderr, "%v\n", oneLine(err))
			}
			if quit {
				return nil
			}
			continue
		}
		if err := s.reply(msg, n, sampler); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	return nil
}

// readMessage reads one message: a line, continued while it ends with \
// on a terminal.
func readMessage(sc *bufio.Scanner, interactive bool) (string, bool) {
	var parts []string
	for sc.Scan() {
		line := sc.Text()
		if interactive && strings.HasSuffix(line, `\`) {
			parts = append(parts, strings.TrimSuffix(line, `\`))
			fmt.Fprint(os.Stderr, ". ")
			continue
		}
		return strings.Join(append(parts, line), "\n"), true
	}
	if len(parts) > 0 {
		return strings.Join(parts, "\n"), true
	}
	return "", false
}

func (s *chatSession) reply(msg string, n int, sampler llama.Sampler) error {
	// Ctrl-C stops the reply, not the chat.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := s.conv.Turn(ctx, msg, n, sampler, func(piece string) error {
		s.out.WriteString(piece)
		return s.out.Flush()
	})
	s.out.WriteString("\n")
	s.out.Flush()
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "(reply interrupted; the conversation is kept as it was before it)")
		return nil
	}
	if err != nil {
		return err
	}
	_ = res
	s.notePastContext()
	return nil
}

// notePastContext says once that the conversation outgrew the model's
// context, and what the cache does about it.
func (s *chatSession) notePastContext() {
	c := s.conv.Ctx
	rows := c.Cache.View().Cap
	if s.noted || c.Tokens() <= min(s.m.H.ContextLength, rows) {
		return
	}
	s.noted = true
	switch s.opts.Cache.Kind {
	case kvcache.FreqKV:
		fmt.Fprintf(os.Stderr, "note: the conversation (%d tokens) no longer fits %d cache rows (the model's context is %d); the freqkv cache keeps it in those rows by compressing older turns to lower resolution: nothing is dropped\n",
			c.Tokens(), rows, s.m.H.ContextLength)
	case kvcache.Window:
		fmt.Fprintf(os.Stderr, "note: the conversation (%d tokens) no longer fits %d cache rows (the model's context is %d); the window cache keeps the first %d and the latest rows: older turns are forgotten\n",
			c.Tokens(), rows, s.m.H.ContextLength, s.opts.Cache.Sink)
	default:
		fmt.Fprintf(os.Stderr, "note: the conversation (%d tokens) is past the model's %d-token training context; the full cache holds %d tokens, then stops\n",
			c.Tokens(), s.m.H.ContextLength, c.Cache.View().Cap)
	}
}

func (s *chatSession) command(line string) (quit bool, err error) {
	fields := strings.Fields(line)
	arg := strings.TrimSpace(strings.TrimPrefix(line, fields[0]))
	switch fields[0] {
	case "/quit", "/exit":
		return true, nil
	case "/help":
		fmt.Fprintln(os.Stderr, chatHelp)
	case "/reset":
		s.conv.Reset()
		fmt.Fprintln(os.Stderr, "conversation reset")
	case "/stats":
		c := s.conv.Ctx
		st := c.Cache.Stats()
		full, err := s.m.CacheGeometry().Bytes(s.opts.Cache.Storage, c.Tokens())
		if err != nil {
			return false, err
		}
		fmt.Fprintf(os.Stderr, "%d messages, %d tokens; cache %s: %d of %d rows in use, %d compressions; KV memory %s (a full cache of %d tokens: %s)\n",
			len(s.conv.Messages), c.Tokens(), s.opts.Cache.Kind, min(st.Rows, c.Cache.View().Cap), c.Cache.View().Cap, st.Compressions,
			humanBytes(st.Bytes), c.Tokens(), humanBytes(full))
	case "/save":
		if arg == "" {
			return false, fmt.Errorf("/save FILE: name the file (.gguf to keep the KV cache too)")
		}
		withCache := strings.HasSuffix(strings.ToLower(arg), ".gguf")
		sv, err := s.conv.Save(s.model, withCache)
		if err != nil {
			return false, fmt.Errorf("/save: %w", err)
		}
		if err := outfile.Check([]outfile.Named{{Name: "/save", Path: arg}}, s.inputs); err != nil {
			return false, err
		}
		err = outfile.Write(arg, func(w io.Writer) error {
			if withCache {
				return sv.WriteGGUF(w)
			}
			b, err := json.MarshalIndent(sv, "", "  ")
			if err != nil {
				return err
			}
			_, err = w.Write(append(b, '\n'))
			return err
		})
		if err != nil {
			return false, fmt.Errorf("/save: %w", err)
		}
		what := "the conversation"
		if withCache {
			what = fmt.Sprintf("the conversation and its KV cache (%d tokens)", s.conv.Ctx.Tokens())
		}
		fmt.Fprintf(os.Stderr, "saved %s, %d messages, to %s\n", what, len(sv.Messages), arg)
	case "/load":
		if arg == "" {
			return false, fmt.Errorf("/load FILE: name the file")
		}
		sv, err := chat.ReadSaved(arg)
		if err != nil {
			return false, fmt.Errorf("/load: %w", err)
		}
		if sv.Cache != nil && sv.Model != s.model {
			return false, fmt.Errorf("/load %s: its KV cache was made by %s, not %s", arg, sv.Model, s.model)
		}
		if err := s.conv.Load(sv); err != nil {
			return false, fmt.Errorf("/load %s: %w", arg, err)
		}
		how := "fed again"
		if sv.Cache != nil {
			how = "its KV cache restored"
		}
		fmt.Fprintf(os.Stderr, "loaded %d messages from %s (%d tokens, %s)\n", len(sv.Messages), arg, s.conv.Ctx.Tokens(), how)
		s.notePastContext()
	default:
		return false, fmt.Errorf("unknown command %s; %s", fields[0], strings.Split(chatHelp, "\n")[0])
	}
	return false, nil
}
