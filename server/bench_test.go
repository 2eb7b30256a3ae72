package server

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/synth"
)

// BenchmarkConcurrentSessions serves the medium synthetic model (dim 1024,
// 8 layers, vocabulary 32000, F16) over real HTTP and runs 1, 2, 4 and 8
// greedy streams at once, one session each, with decode steps batched (and
// 8 unbatched, for comparison): aggregate generated tokens per second of
// wall time, and the time between consecutive tokens of a stream (p50, p99)
// as its client sees them.
//
//	go test -run '^$' -bench ConcurrentSessions -benchtime 1x ./server
func BenchmarkConcurrentSessions(b *testing.B) {
	dev := gputest.Device(b)
	path := filepath.Join(b.TempDir(), "medium.gguf")
	if err := synth.Write(path, synth.Medium()); err != nil {
		b.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	m, err := llama.Load(dev, f, llama.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Release()
	const tokens = 16
	type run struct {
		sessions int
		noBatch  bool
	}
	for _, r := range []run{{1, false}, {2, false}, {4, false}, {8, false}, {8, true}} {
		p := r.sessions
		name := fmt.Sprintf("sessions=%d", p)
		if r.noBatch {
			name += "/unbatched"
		}
		b.Run(name, func(b *testing.B) {
			s, err := New(Config{Model: m, ModelName: "medium", Parallel: p, MaxTokens: tokens, NoBatch: r.noBatch,
				Cache: llama.ContextOptions{Cache: kvcache.DefaultSpec(kvcache.FreqKV, 512, engine.F16), MaxChunk: 32}})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			hs := httptest.NewServer(s.Handler())
			defer hs.Close()
			var gaps []time.Duration
			generated := 0
			var wall time.Duration
			for range b.N {
				start := time.Now()
				var mu sync.Mutex
				var wg sync.WaitGroup
				for i := range p {
					wg.Add(1)
					go func() {
						defer wg.Done()
						times, err := stream(hs.URL, fmt.Sprintf("abc def ghi %d", i), tokens)
						if err != nil {
							b.Error(err)
							return
						}
						mu.Lock()
						generated += len(times)
						for k := 1; k < len(times); k++ {
							gaps = append(gaps, times[k].Sub(times[k-1]))
						}
						mu.Unlock()
					}()
				}
				wg.Wait()
				wall += time.Since(start)
			}
			slices.Sort(gaps)
			pct := func(q float64) float64 {
				if len(gaps) == 0 {
					return 0
				}
				return gaps[min(len(gaps)-1, int(q*float64(len(gaps))))].Seconds() * 1000
			}
			b.ReportMetric(float64(generated)/wall.Seconds(), "tok/s")
			b.ReportMetric(pct(0.5), "p50-ms/token")
			b.ReportMetric(pct(0.99), "p99-ms/token")
		})
	}
}

// stream runs one greedy streaming completion and returns when each
// chunk of text arrived.
func stream(url, prompt string, n int) ([]time.Time, error) {
	body := fmt.Sprintf(`{"prompt":%q,"max_tokens":%d,"temperature":0,"stream":true}`, prompt, n)
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	var times []time.Time
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "data: {") && !strings.Contains(line, `"finish_reason":"`) {
			times = append(times, time.Now())
		}
	}
	return times, sc.Err()
}
