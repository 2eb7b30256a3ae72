// Package server serves a model over HTTP with the OpenAI API
// (/v1/chat/completions, /v1/completions, /v1/models) plus /health and
// /metrics, running up to Parallel requests at once, each in a session
// with its own fixed-size KV cache, and queueing a bounded number more.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/freqkv/freqkv/chat"
	"github.com/freqkv/freqkv/model/llama"
)

// Config sets up a Server.
type Config struct {
	Model     *llama.Model
	ModelName string               // the id /v1/models lists
	Template  *chat.Template       // renders chat requests
	Cache     llama.ContextOptions // each session's cache and prefill step
	Parallel  int                  // sessions running at once
	Queue     int                  // requests waiting for a session; beyond them: 503
	MaxTokens int                  // a request's max_tokens when it gives none
	// MaxPrompt bounds a prompt's tokens (a full cache bounds prompt plus
	// max_tokens by its size).
	MaxPrompt int
	Timeout   time.Duration // per request; 0: none
	MaxBody   int64         // request body bytes
	// MemoryLimit, if positive, is the device memory the weights and every
	// session's cache and activations must fit in, checked by New.
	MemoryLimit int64
	// NoBatch runs each session's decode steps alone, in turns, instead of
	// batching the steps of all decoding sessions into one forward pass.
	NoBatch bool
}

// Server runs requests on a pool of sessions.
type Server struct {
	cfg        Config
	sessions   []*session
	free       chan *session
	dev        sync.Mutex // the device runs one step at a time
	waiting    atomic.Int64
	active     atomic.Int64
	draining   atomic.Bool
	ids        atomic.Int64
	metrics    *metrics
	stopIDs    map[int32]bool
	stopTexts  []string
	Weights    int64 // device bytes of the weights
	PerSession int64 // device bytes of one session (KV cache and activations)

	kvBytes   int64
	batch     *llama.Batch   // nil with NoBatch, or for a model the batch does not run
	decodeCh  chan decodeReq // decode steps waiting for the batcher
	decoding  atomic.Int64   // sessions in their decode loop
	stop      chan struct{}
	batchDone chan struct{}
}

type session struct {
	id  int
	ctx *llama.Context
}

// New allocates the sessions; it fails, with the numbers, when they and
// the weights would not fit MemoryLimit.
func New(cfg Config) (*Server, error) {
	if cfg.Parallel < 1 {
		return nil, fmt.Errorf("parallel sessions %d must be at least 1", cfg.Parallel)
	}
	if cfg.Queue < 0 {
		return nil, fmt.Errorf("queue %d must be >= 0", cfg.Queue)
	}
	if cfg.MaxTokens < 1 {
		cfg.MaxTokens = 256
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.MaxPrompt <= 0 {
		cfg.MaxPrompt = 1 << 16
	}
	dev := cfg.Model.Device()
	s := &Server{cfg: cfg, free: make(chan *session, cfg.Parallel), metrics: newMetrics()}
	s.Weights = dev.AllocatedBytes()
	for i := range cfg.Parallel {
		before := dev.AllocatedBytes()
		c, err := cfg.Model.NewContext(cfg.Cache)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("session %d: %w", i, err)
		}
		s.sessions = append(s.sessions, &session{id: i, ctx: c})
		if i == 0 {
			s.PerSession = dev.AllocatedBytes() - before
			s.Weights = before
			if need := s.Weights + int64(cfg.Parallel)*s.PerSession; cfg.MemoryLimit > 0 && need > cfg.MemoryLimit {
				s.Close()
				return nil, fmt.Errorf("%d sessions of %s each (KV cache %s and activations) plus %s of weights need %s, over the memory limit of %s: lower the sessions or the cache size",
					cfg.Parallel, human(s.PerSession), human(c.Cache.Stats().Bytes), human(s.Weights), human(need), human(cfg.MemoryLimit))
			}
		}
	}
	for _, se := range s.sessions {
		s.kvBytes += se.ctx.Cache.Stats().Bytes
	}
	// Models whose forward the batch step does not rebuild decode per session.
	if !cfg.NoBatch && cfg.Model.Batchable() == nil {
		b, err := cfg.Model.NewBatch(cfg.Parallel)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("decode batch: %w", err)
		}
		s.batch = b
		s.decodeCh = make(chan decodeReq, cfg.Parallel)
		s.stop, s.batchDone = make(chan struct{}), make(chan struct{})
		go s.batchLoop()
	}
	for _, se := range s.sessions {
		s.free <- se
	}
	if cfg.Template != nil {
		s.stopIDs, s.stopTexts = chat.StopTokens(cfg.Template, cfg.Model.Tok)
	}
	return s, nil
}

// KVBytes is what the sessions' caches hold, all together: fixed at start,
// so it is read without touching caches that steps are using.
func (s *Server) KVBytes() int64 { return s.kvBytes }

// Close releases the sessions; no request may be running.
func (s *Server) Close() {
	if s.stop != nil {
		close(s.stop)
		<-s.batchDone
		s.stop = nil
	}
	if s.batch != nil {
		s.batch.Release()
		s.batch = nil
	}
	for _, se := range s.sessions {
		se.ctx.Release()
	}
	s.sessions = nil
}

// Drain stops admitting requests; running and queued ones finish.
func (s *Server) Drain() { s.draining.Store(true) }

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.count("chat", s.handleChat))
	mux.HandleFunc("POST /v1/completions", s.count("completions", s.handleCompletion))
	mux.HandleFunc("GET /v1/models", s.count("models", s.handleModels))
	mux.HandleFunc("GET /health", s.count("health", s.handleHealth))
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, Message: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path), Type: "invalid_request_error"})
	})
	return mux
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) count(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		s.metrics.request(endpoint, sw.code)
		if endpoint == "chat" || endpoint == "completions" {
			s.metrics.mu.Lock()
			s.metrics.duration.observe(time.Since(start))
			s.metrics.mu.Unlock()
		}
	}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"object": "list", "data": []any{map[string]any{
		"id": s.cfg.ModelName, "object": "model", "created": 0, "owned_by": "freqkv",
	}}})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	status, code := "ok", http.StatusOK
	if s.draining.Load() {
		status, code = "draining", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"status": status, "sessions": len(s.sessions), "active": s.active.Load(), "queue": s.waiting.Load()})
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	// Compressions count when their request ends.
	s.metrics.write(w, gauges{queue: int(s.waiting.Load()), active: int(s.active.Load()), sessions: len(s.sessions), kvBytes: s.KVBytes()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func unavailable(s *Server, msg string) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, Message: msg, Type: "server_error"}
}

// acquire takes a free session, waiting in the bounded queue.
func (s *Server) acquire(ctx context.Context) (*session, *apiError) {
	if s.draining.Load() {
		return nil, unavailable(s, "the server is shutting down; retry on another replica")
	}
	select {
	case se := <-s.free:
		return se, nil
	default:
	}
	if s.waiting.Add(1) > int64(s.cfg.Queue) {
		s.waiting.Add(-1)
		return nil, unavailable(s, fmt.Sprintf("all %d sessions are busy and the queue of %d is full; retry later", len(s.sessions), s.cfg.Queue))
	}
	defer s.waiting.Add(-1)
	select {
	case se := <-s.free:
		return se, nil
	case <-ctx.Done():
		return nil, &apiError{status: 499, Message: "request cancelled while queued", Type: "server_error"}
	}
}

func (s *Server) release(se *session, compressions int64) {
	s.dev.Lock()
	se.ctx.Reset()
	s.dev.Unlock()
	s.metrics.mu.Lock()
	s.metrics.compression += compressions
	s.metrics.mu.Unlock()
	s.active.Add(-1)
	s.free <- se
}

// retryAfter estimates the seconds until a session frees up.
func (s *Server) retryAfter() string {
	s.metrics.mu.Lock()
	h := s.metrics.duration
	s.metrics.mu.Unlock()
	sec := 1.0
	if h.n > 0 {
		sec = math.Max(1, math.Ceil(h.sum/float64(h.n)))
	}
	return strconv.Itoa(int(sec))
}

func (s *Server) fail(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", s.retryAfter())
		s.metrics.mu.Lock()
		s.metrics.rejected++
		s.metrics.mu.Unlock()
	}
	writeError(w, e)
}

var errClientGone = errors.New("client went away")
