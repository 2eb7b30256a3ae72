package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/chat"
	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/builtin"
	"github.com/freqkv/freqkv/model/llama"
)

var (
	modelOnce sync.Once
	model     *llama.Model
	modelErr  error
)

// testModel loads the embedded stories260K once.
func testModel(t *testing.T) *llama.Model {
	t.Helper()
	dev := gputest.Device(t)
	modelOnce.Do(func() {
		f, err := builtin.Open()
		if err != nil {
			modelErr = err
			return
		}
		model, modelErr = llama.Load(dev, f, llama.LoadOptions{})
	})
	require.NoError(t, modelErr)
	return model
}

func cacheOptions() llama.ContextOptions {
	return llama.ContextOptions{Cache: kvcache.DefaultSpec(kvcache.FreqKV, 128, engine.F32), MaxChunk: 64}
}

// start serves on 127.0.0.1 over real TCP.
func start(t *testing.T, mut func(*Config)) (*Server, string) {
	t.Helper()
	m := testModel(t)
	tpl, err := chat.Resolve("plain", "", m.Tok.Piece(m.Tok.BOS()), m.Tok.Piece(m.Tok.EOS()))
	require.NoError(t, err)
	cfg := Config{Model: m, ModelName: "stories260K", Template: tpl, Cache: cacheOptions(), Parallel: 2, Queue: 4, MaxTokens: 16, Timeout: time.Minute}
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(cfg)
	require.NoError(t, err)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return s, hs.URL
}

func client(url string) *openai.Client {
	c := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	return &c
}

// streamChat runs a greedy streaming chat request and returns its text.
func streamChat(ctx context.Context, c *openai.Client, prompt string, maxTokens int64) (string, string, error) {
	st := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:       "stories260K",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
		MaxTokens:   openai.Int(maxTokens),
		Temperature: openai.Float(0),
	})
	var text strings.Builder
	finish := ""
	for st.Next() {
		ch := st.Current()
		if len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
			if ch.Choices[0].FinishReason != "" {
				finish = ch.Choices[0].FinishReason
			}
		}
	}
	return text.String(), finish, st.Err()
}

var prompts = []string{
	"Once upon a time", "Tom had a red ball", "The sun was hot", "Lily went to the park",
	"A big dog barked", "Sam liked to eat cake", "The bird sang a song", "Mia found a box",
}

// TestConcurrentStreamsEqualSolo: eight streams at once (on four
// sessions, four more queued) give each exactly its solo run.
func TestConcurrentStreamsEqualSolo(t *testing.T) {
	_, url := start(t, func(c *Config) { c.Parallel, c.Queue = 4, 8 })
	c := client(url)
	ctx := context.Background()
	solo := make([]string, len(prompts))
	for i, p := range prompts {
		text, finish, err := streamChat(ctx, c, p, 12)
		require.NoError(t, err)
		require.Equal(t, "length", finish)
		require.NotEmpty(t, text)
		solo[i] = text
	}
	got := make([]string, len(prompts))
	errs := make([]error, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _, errs[i] = streamChat(ctx, c, p, 12)
		}()
	}
	wg.Wait()
	for i := range prompts {
		require.NoError(t, errs[i], prompts[i])
		assert.Equal(t, solo[i], got[i], "stream %d (%q) differs from its solo run", i, prompts[i])
	}
	// Some decode steps ran several sessions in one forward pass.
	steps := metricValue(t, url, "freqkv_decode_batch_sessions_count")
	single := metricValue(t, url, `freqkv_decode_batch_sessions_bucket{le="1"}`)
	assert.Greater(t, steps-single, 0.0, "%v of %v steps had one session", single, steps)
	t.Logf("%v decode steps, %v of them with one session", steps, single)
}

// TestClientAPI: models, a non-streaming completion with usage, stop
// sequences and seeded sampling through the OpenAI client.
func TestClientAPI(t *testing.T) {
	_, url := start(t, nil)
	c := client(url)
	ctx := context.Background()
	page, err := c.Models.List(ctx)
	require.NoError(t, err)
	require.Len(t, page.Data, 1)
	assert.Equal(t, "stories260K", page.Data[0].ID)

	res, err := c.Completions.New(ctx, openai.CompletionNewParams{
		Model:       "stories260K",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens:   openai.Int(10),
		Temperature: openai.Float(0),
	})
	require.NoError(t, err)
	require.Len(t, res.Choices, 1)
	assert.Equal(t, "length", string(res.Choices[0].FinishReason))
	assert.EqualValues(t, 10, res.Usage.CompletionTokens)
	assert.EqualValues(t, 5, res.Usage.PromptTokens, "BOS and four tokens")
	full := res.Choices[0].Text
	require.NotEmpty(t, full)

	// A stop sequence inside that text cuts the reply before it.
	word := strings.Fields(full)[1]
	cut, err := c.Completions.New(ctx, openai.CompletionNewParams{
		Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens: openai.Int(10), Temperature: openai.Float(0),
		Stop: openai.CompletionNewParamsStopUnion{OfString: openai.String(word)},
	})
	require.NoError(t, err)
	assert.Equal(t, "stop", string(cut.Choices[0].FinishReason))
	assert.Equal(t, full[:strings.Index(full, word)], cut.Choices[0].Text)

	// The same seed gives the same sample.
	var seeded [2]string
	for i := range seeded {
		r, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "stories260K", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Once upon a time")},
			MaxTokens: openai.Int(12), Temperature: openai.Float(1), Seed: openai.Int(42),
		})
		require.NoError(t, err)
		seeded[i] = r.Choices[0].Message.Content
		assert.EqualValues(t, 12, r.Usage.CompletionTokens)
	}
	assert.Equal(t, seeded[0], seeded[1])
}

func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(string(b))
	require.NotNil(t, m, "metric %s in\n%s", name, b)
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

// waitMetric polls /metrics (a bounded number of times) until name has
// value want.
func waitMetric(t *testing.T, url, name string, want float64) {
	t.Helper()
	for range 400 {
		if metricValue(t, url, name) == want {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("metric %s never reached %v (now %v)", name, want, metricValue(t, url, name))
}

// longStream starts a streaming request that would run for thousands of
// tokens and returns once its first chunk arrived.
func longStream(t *testing.T, ctx context.Context, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/completions",
		strings.NewReader(`{"prompt":"Once upon a time","max_tokens":100000,"temperature":0,"stream":true}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "data: "), line)
	return resp
}

// TestDisconnectFreesSession: a client that goes away mid-stream frees
// its session, which the metrics show and the next request gets.
func TestDisconnectFreesSession(t *testing.T) {
	_, url := start(t, func(c *Config) { c.Parallel, c.Queue, c.MaxPrompt = 1, 0, 1000 })
	ctx, cancel := context.WithCancel(context.Background())
	resp := longStream(t, ctx, url)
	require.EqualValues(t, 1, metricValue(t, url, "freqkv_active_sessions"))
	cancel()
	resp.Body.Close()
	waitMetric(t, url, "freqkv_active_sessions", 0)
	require.EqualValues(t, 1, metricValue(t, url, "freqkv_cancelled_total"))
	text, finish, err := streamChat(context.Background(), client(url), "Tom had a red ball", 4)
	require.NoError(t, err)
	require.Equal(t, "length", finish)
	require.NotEmpty(t, text)
}

// TestQueueFull503: with every session busy and the queue full, a request
// is refused at once with 503, Retry-After and an OpenAI error object.
func TestQueueFull503(t *testing.T) {
	_, url := start(t, func(c *Config) { c.Parallel, c.Queue = 1, 1 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := longStream(t, ctx, url)
	defer resp.Body.Close()
	queued := make(chan error, 1)
	go func() {
		_, _, err := streamChat(ctx, client(url), "Tom had a red ball", 4)
		queued <- err
	}()
	waitMetric(t, url, "freqkv_queue_depth", 1)

	_, _, err := streamChat(context.Background(), client(url), "The sun was hot", 4)
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr), "%v", err)
	require.Equal(t, 503, apiErr.StatusCode)
	assert.NotEmpty(t, apiErr.Response.Header.Get("Retry-After"))
	assert.Contains(t, apiErr.Message, "queue")
	assert.EqualValues(t, 1, metricValue(t, url, "freqkv_rejected_total"))
	cancel()
	<-queued
	waitMetric(t, url, "freqkv_active_sessions", 0)
	waitMetric(t, url, "freqkv_queue_depth", 0)
}

// TestMalformed400: bad requests get 400 with an OpenAI error object,
// and the server goes on serving.
func TestMalformed400(t *testing.T) {
	_, url := start(t, func(c *Config) {
		c.MaxBody, c.MaxPrompt = 4096, 64
		c.Cache.Cache = kvcache.DefaultSpec(kvcache.Full, 48, engine.F32)
	})
	long := strings.Repeat("the cat sat on the mat ", 40)
	for _, c := range []struct{ path, body, want string }{
		{"chat/completions", `{bad`, "malformed JSON"},
		{"chat/completions", `{"messages":"hi"}`, "messages"},
		{"chat/completions", `{"messages":[]}`, "at least one message"},
		{"chat/completions", `{"messages":[{"role":"robot","content":"x"}]}`, "robot"},
		{"chat/completions", `{"messages":[{"role":"user","content":"x"}],"max_tokens":0}`, "max_tokens"},
		{"chat/completions", `{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}`, "temperature"},
		{"chat/completions", `{"messages":[{"role":"user","content":"x"}],"stream":"yes"}`, "stream"},
		{"chat/completions", `{"messages":[{"role":"user","content":"x"}],"n":3}`, "n must be 1"},
		{"chat/completions", `{"messages":[{"role":"user","content":"x"}],"max_tokens":46}`, "full cache"},
		{"chat/completions", `{"messages":[{"role":"user","content":"` + long + `"}]}`, "limit of 64"},
		{"completions", `{"prompt":"` + strings.Repeat("x", 5000) + `"}`, "limit of 4096 bytes"},
		{"completions", `{"max_tokens":4}`, "prompt is required"},
		{"completions", `{"prompt":7}`, "prompt"},
		{"completions", `{"prompt":"x","stop":[1,2]}`, "stop"},
	} {
		resp, err := http.Post(url+"/v1/"+c.path, "application/json", strings.NewReader(c.body))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if len(c.body) < 100 {
			require.Equal(t, 400, resp.StatusCode, "%s %s: %s", c.path, c.body, body)
		} else {
			require.Equal(t, 400, resp.StatusCode, "%s (long body): %s", c.path, body)
		}
		assert.Contains(t, body, `"type":"invalid_request_error"`)
		assert.Contains(t, body, c.want, c.body[:min(len(c.body), 80)])
	}
	// Through the client too: the error is parsed as OpenAI's.
	_, err := client(url).Completions.New(context.Background(), openai.CompletionNewParams{
		Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("x")}, MaxTokens: openai.Int(-1),
	})
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, 400, apiErr.StatusCode)
	assert.Equal(t, "max_tokens", apiErr.Param)
	text, _, err := streamChat(context.Background(), client(url), "Hi", 4)
	require.NoError(t, err, "the server still serves")
	require.NotEmpty(t, text)
}

// TestMemoryAdmission: sessions that do not fit the memory limit are
// refused at start, with the numbers.
func TestMemoryAdmission(t *testing.T) {
	m := testModel(t)
	_, err := New(Config{Model: m, ModelName: "x", Cache: cacheOptions(), Parallel: 64, MemoryLimit: 4 << 20})
	require.Error(t, err)
	assert.Regexp(t, `64 sessions of [0-9.]+ [KM]iB each .* need [0-9.]+ [KMG]iB, over the memory limit of 4.0 MiB`, err.Error())
}

// TestTimeout: a request past the server's time limit gets 504 with an
// error object, and frees its session.
func TestTimeout(t *testing.T) {
	_, url := start(t, func(c *Config) { c.Timeout = time.Nanosecond })
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"Once","max_tokens":4}`))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, string(b))
	assert.Contains(t, string(b), "timeout")
	waitMetric(t, url, "freqkv_active_sessions", 0)
}
