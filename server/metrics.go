package server

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// metrics are counters, gauges and histograms written in Prometheus' text
// exposition format; a handful of series does not need a client library.
type metrics struct {
	mu          sync.Mutex
	requests    map[string]int64 // "endpoint\x00code" -> count
	promptToks  int64
	genToks     int64
	cancelled   int64
	rejected    int64
	compression int64 // compressions of finished requests
	duration    histogram
	firstToken  histogram
	interToken  histogram
	batchRows   histogram // sessions per batched decode step (not seconds)
}

type histogram struct {
	bounds []float64 // seconds
	counts []int64   // per bound, plus +Inf last
	sum    float64
	n      int64
}

func newHistogram(bounds ...float64) histogram {
	return histogram{bounds: bounds, counts: make([]int64, len(bounds)+1)}
}

func (h *histogram) observe(d time.Duration) { h.observeValue(d.Seconds()) }

func (h *histogram) observeN(n int) { h.observeValue(float64(n)) }

func (h *histogram) observeValue(s float64) {
	i := sort.SearchFloat64s(h.bounds, s)
	h.counts[i]++
	h.sum += s
	h.n++
}

func newMetrics() *metrics {
	return &metrics{
		requests:   map[string]int64{},
		duration:   newHistogram(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
		firstToken: newHistogram(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
		interToken: newHistogram(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
		batchRows:  newHistogram(1, 2, 4, 8, 16, 32, 64),
	}
}

func (m *metrics) request(endpoint string, code int) {
	m.mu.Lock()
	m.requests[endpoint+"\x00"+fmt.Sprint(code)]++
	m.mu.Unlock()
}

// gauges are the values read at scrape time.
type gauges struct {
	queue, active, sessions int
	kvBytes                 int64
}

func (m *metrics) write(w io.Writer, g gauges) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintln(w, "# HELP freqkv_requests_total HTTP requests by endpoint and status code.")
	fmt.Fprintln(w, "# TYPE freqkv_requests_total counter")
	keys := make([]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ep, code, _ := strings.Cut(k, "\x00")
		fmt.Fprintf(w, "freqkv_requests_total{endpoint=%q,code=%q} %d\n", ep, code, m.requests[k])
	}
	counter := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	counter("freqkv_prompt_tokens_total", "Prompt tokens fed.", m.promptToks)
	counter("freqkv_generated_tokens_total", "Tokens generated.", m.genToks)
	counter("freqkv_cancelled_total", "Requests cancelled by a client disconnect or a timeout.", m.cancelled)
	counter("freqkv_rejected_total", "Requests refused because the queue was full or the server draining.", m.rejected)
	counter("freqkv_kv_compressions_total", "FreqKV compressions of the KV caches.", m.compression)
	gauge("freqkv_queue_depth", "Requests waiting for a session.", int64(g.queue))
	gauge("freqkv_active_sessions", "Sessions running a request.", int64(g.active))
	gauge("freqkv_sessions", "Sessions that can run requests at once.", int64(g.sessions))
	gauge("freqkv_kv_bytes", "Bytes held by the KV caches of all sessions (fixed at start).", g.kvBytes)
	for _, h := range []struct {
		name, help string
		h          *histogram
	}{
		{"freqkv_request_duration_seconds", "Time from a request's arrival to its last byte.", &m.duration},
		{"freqkv_time_to_first_token_seconds", "Time from a request's arrival to its first generated token.", &m.firstToken},
		{"freqkv_inter_token_seconds", "Time between consecutive generated tokens of a stream.", &m.interToken},
		{"freqkv_decode_batch_sessions", "Sessions in each batched decode step.", &m.batchRows},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", h.name, h.help, h.name)
		cum := int64(0)
		for i, b := range h.h.bounds {
			cum += h.h.counts[i]
			fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", h.name, b, cum)
		}
		cum += h.h.counts[len(h.h.bounds)]
		fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", h.name, cum, h.name, h.h.sum, h.name, h.h.n)
	}
}
