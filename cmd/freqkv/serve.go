package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/freqkv/freqkv/chat"
	"github.com/freqkv/freqkv/server"
)

func init() {
	register(command{name: "serve", summary: "serve the model over HTTP with the OpenAI API (chat and completions)", run: runServe, ownSignals: true})
}

func runServe(args []string) error {
	fs := newFlags("serve", "[-m MODEL] [--host H] [--port P] [--parallel N] [cache flags]",
		"Serves POST /v1/chat/completions and /v1/completions (stream or not), GET /v1/models,\n"+
			"/health and /metrics (Prometheus). --parallel sessions run at once, each with its own\n"+
			"fixed-size KV cache (default freqkv), so memory is known at start; up to --queue more wait,\n"+
			"beyond that requests get 503 with Retry-After. SIGTERM or SIGINT drains: no new requests,\n"+
			"running ones finish, then exit 0. The decode steps of all decoding sessions run as one\n"+
			"batched forward pass; prompts are fed a --batch chunk at a time between steps. Without -m\n"+
			"it serves the embedded stories260K with the plain chat template. See docs/serve.md.")
	var mf modelFlags
	mf.add(fs)
	host := fs.String("host", "127.0.0.1", "address to listen on (0.0.0.0: every interface)")
	port := fs.Int("port", 8080, "port (0: any free port, printed at start)")
	parallel := fs.Int("parallel", 1, "sessions running at once, each with its own KV cache")
	queue := fs.Int("queue", 16, "requests waiting for a session before 503")
	maxTokens := fs.Int("max-tokens", 256, "a request's max_tokens when it gives none")
	maxPrompt := fs.Int("max-prompt", 65536, "most prompt tokens a request may send")
	timeout := fs.Duration("timeout", 5*time.Minute, "per-request time limit (0: none)")
	maxBody := fs.Int64("max-body", 1<<20, "largest request body in bytes")
	memory := fs.String("memory", "", "device memory the weights and all sessions must fit, e.g. 8GiB (default: available RAM on a CPU adapter, unchecked on a GPU, which WebGPU does not size)")
	noBatch := fs.Bool("no-batch", false, "run each session's decode steps alone, in turns, instead of one batched forward pass for all decoding sessions")
	name := fs.String("model-name", "", "model id in the API (default: the model file's name)")
	tplFlag := fs.String("chat-template", "", "chat template: a built-in ("+strings.Join(chat.Names(), ", ")+") or a Jinja file (default: the model's own, else plain)")
	var cf cacheFlags
	cf.add(fs, "freqkv", false, "default: the model's trained context")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *parallel < 1:
		return usagef("--parallel %d must be at least 1", *parallel)
	case *queue < 0:
		return usagef("--queue %d must be >= 0", *queue)
	case *maxTokens < 1:
		return usagef("--max-tokens %d must be at least 1", *maxTokens)
	case *maxPrompt < 1:
		return usagef("--max-prompt %d must be at least 1", *maxPrompt)
	case *port < 0 || *port > 65535:
		return usagef("--port %d must be in [0, 65535]", *port)
	case *maxBody < 1:
		return usagef("--max-body %d must be at least 1", *maxBody)
	case *timeout < 0:
		return usagef("--timeout %v must be >= 0", *timeout)
	}
	limit := int64(0)
	if *memory != "" {
		v, err := parseBytes(*memory)
		if err != nil {
			return usagef("--memory: %v", err)
		}
		limit = v
	}
	cm, err := loadChatModel(&mf, &cf, *tplFlag, true)
	if err != nil {
		return err
	}
	defer cm.dev.Close()
	dev, m, tpl, spec := cm.dev, cm.m, cm.tpl, cm.spec
	opts := cf.options(spec)
	if limit == 0 && dev.Info.IsCPU() {
		limit = memAvailable()
	}
	id := *name
	if id == "" {
		id = mf.name()
		if mf.path == "" {
			id = "stories260K"
		}
		if i := strings.LastIndexAny(id, `/\`); i >= 0 {
			id = id[i+1:]
		}
	}
	srv, err := server.New(server.Config{
		Model: m, ModelName: id, Template: tpl, Cache: opts, Parallel: *parallel, Queue: *queue,
		MaxTokens: *maxTokens, MaxPrompt: *maxPrompt, Timeout: *timeout, MaxBody: *maxBody, MemoryLimit: limit, NoBatch: *noBatch,
	})
	if err != nil {
		if limit > 0 && strings.Contains(err.Error(), "memory limit") {
			return usagef("%v (--parallel, --cache-size, --memory)", err)
		}
		return cf.explain(spec, err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(os.Stderr, "model %s (template %s) on %s; %d sessions x %s (KV cache %s each, %s) + %s weights\n",
		id, tpl.Name, dev.Info.Name, *parallel, humanBytes(srv.PerSession), humanBytes(srv.KVBytes()/int64(*parallel)), spec.Kind, humanBytes(srv.Weights))
	fmt.Fprintf(os.Stderr, "listening on http://%s\n", ln.Addr())

	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(os.Stderr, "draining: refusing new requests, finishing running ones")
	srv.Drain()
	// Shutdown closes the listener and waits for running requests.
	if err := hs.Shutdown(context.Background()); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(os.Stderr, "drained; exiting")
	return nil
}

// parseBytes reads sizes such as 512MiB, 8GiB, 2GB or 1048576.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := 1.0
	num := strings.TrimSpace(s)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			mult, num = u.mult, strings.TrimSpace(strings.TrimSuffix(num, u.suffix))
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a positive size such as 512MiB or 8GiB", s)
	}
	return int64(v * mult), nil
}

// memAvailable is the kernel's estimate of memory available to a new
// process (a CPU adapter's device memory), 0 when unknown.
func memAvailable() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
