package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/freqkv/freqkv/chat"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/tokenizer"
)

// serveProc runs 'freqkv serve' on a free port of 127.0.0.1 and returns
// its base URL once it listens.
func serveProc(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--port", "0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if url, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, url
		}
	}
	t.Fatalf("freqkv serve exited before listening: %v", sc.Err())
	return nil, ""
}

func openaiClient(url string) *openai.Client {
	c := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	return &c
}

// TestServeGreedyEqualsGenerate: a greedy stream from the server, on the
// completions and the chat endpoint, is exactly generate's output.
func TestServeGreedyEqualsGenerate(t *testing.T) {
	gputest.Device(t)
	const prompt = "Once upon a time"
	r := runCLI(t, "generate", "-p", prompt, "-n", "24")
	require.Equal(t, 0, r.code, r.stderr)
	_, url := serveProc(t, "--parallel", "2")
	c := openaiClient(url)
	ctx := context.Background()

	st := c.Completions.NewStreaming(ctx, openai.CompletionNewParams{
		Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		MaxTokens: openai.Int(24), Temperature: openai.Float(0),
	})
	var text strings.Builder
	for st.Next() {
		if ch := st.Current(); len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Text)
		}
	}
	require.NoError(t, st.Err())
	require.Equal(t, r.stdout, prompt+text.String()+"\n")

	// The embedded model's plain chat template renders BOS and the user's
	// text: the same prompt.
	cs := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: "stories260K", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
		MaxTokens: openai.Int(24), Temperature: openai.Float(0),
	})
	var reply strings.Builder
	for cs.Next() {
		if ch := cs.Current(); len(ch.Choices) > 0 {
			reply.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	require.NoError(t, cs.Err())
	require.Equal(t, r.stdout, prompt+reply.String()+"\n")
}

// TestServeSIGTERMDrains: SIGTERM during a stream refuses new requests,
// lets the stream finish, then exits 0.
func TestServeSIGTERMDrains(t *testing.T) {
	gputest.Device(t)
	cmd, url := serveProc(t, "--parallel", "1")
	body := `{"prompt":"Once upon a time","max_tokens":64,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	first, err := rd.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(first, "data: {"), first)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	var usage struct {
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	done := false
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "data: [DONE]") {
			done = true
		} else if strings.Contains(line, `"usage"`) {
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &usage))
		}
	}
	require.True(t, done, "the stream ends with [DONE]")
	require.Equal(t, 64, usage.Usage.CompletionTokens, "the running request finished in full")
	require.NoError(t, cmd.Wait(), "exit status 0 after draining")
	// Nothing listens any more.
	_, err = http.Get(url + "/health")
	require.Error(t, err)
}

// TestChatStdin: without a terminal, chat reads one message per line;
// commands work and the past-the-cache note shows once.
func TestChatStdin(t *testing.T) {
	gputest.Device(t)
	saved := filepath.Join(t.TempDir(), "chat.json")
	in := strings.Join([]string{
		"Once upon a time there was a cat", "The cat saw a dog", "/stats", "/save " + saved,
		"/reset", "/stats", "/load " + saved, "/stats", "They played all day",
	}, "\n") + "\n"
	cmd := exec.Command(binary, "chat", "-n", "24", "--cache-size", "48", "--system", "A story.")
	cmd.Stdin = strings.NewReader(in)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), errb.String())
	// Each reply ends with a newline (replies may hold newlines too).
	require.GreaterOrEqual(t, strings.Count(out.String(), "\n"), 3, out.String())
	stderr := errb.String()
	require.Equal(t, 1, strings.Count(stderr, "note: the conversation"), stderr)
	require.Contains(t, stderr, "no longer fits 48 cache rows")
	require.Contains(t, stderr, "5 messages")
	require.Contains(t, stderr, "1 messages, 0 tokens")
	require.Contains(t, stderr, "loaded 5 messages")
	b, err := os.ReadFile(saved)
	require.NoError(t, err)
	var sv chat.Saved
	require.NoError(t, json.Unmarshal(b, &sv))
	require.Len(t, sv.Messages, 5)
	require.Equal(t, "A story.", sv.Messages[0].Content)
	require.Equal(t, "assistant", sv.Messages[4].Role)

	// A bad command without a terminal is an error, exit 1.
	cmd = exec.Command(binary, "chat", "-n", "4")
	cmd.Stdin = strings.NewReader("/frobnicate\n")
	errb.Reset()
	cmd.Stderr = &errb
	err = cmd.Run()
	require.Error(t, err)
	require.Contains(t, errb.String(), "unknown command /frobnicate")
}

// withTemplate copies a GGUF model adding tokenizer.chat_template.
func withTemplate(t *testing.T, src, template string) string {
	t.Helper()
	f, err := gguf.Open(src)
	require.NoError(t, err)
	defer f.Close()
	var kv []gguf.KV
	for _, k := range f.Keys() {
		v, _ := f.Value(k)
		kv = append(kv, gguf.KV{Key: k, Value: v})
	}
	kv = append(kv, gguf.KV{Key: "tokenizer.chat_template", Value: template})
	var tensors []gguf.WriteTensor
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		data, err := f.TensorData(ti)
		require.NoError(t, err)
		tensors = append(tensors, gguf.WriteTensor{Name: ti.Name, Dims: ti.Dims, Type: ti.Type, Data: data})
	}
	out := filepath.Join(t.TempDir(), "with-template.gguf")
	w, err := os.Create(out)
	require.NoError(t, err)
	require.NoError(t, gguf.Write(w, kv, tensors))
	require.NoError(t, w.Close())
	return out
}

// TestChatAndServeWithModelTemplate: a GGUF's own tokenizer.chat_template
// is what chat and serve render (the llama-2 vocabulary with random
// weights: the replies are noise, the prompt's tokens are checked).
func TestChatAndServeWithModelTemplate(t *testing.T) {
	gputest.Device(t)
	const tpl = `{% for m in messages %}{{ bos_token }}[{{ m['role'] }}] {{ m['content'] }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}{{ bos_token }}[assistant]{% endif %}`
	model := withTemplate(t, shareddata.Path(t, "models/llama-2-tiny-random.gguf"), tpl)
	cmd := exec.Command(binary, "chat", "-m", model, "-n", "4", "--system", "Be brief.")
	cmd.Stdin = strings.NewReader("Hello\n/stats\n")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), errb.String())
	// "<s>[system] Be brief.</s><s>[user] Hello</s><s>[assistant]": BOS and
	// EOS as single ids (3 + 2), the rest as text.
	require.Contains(t, errb.String(), "3 messages")

	_, url := serveProc(t, "-m", model)
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(
		`{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}],"max_tokens":3,"temperature":0}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var res struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
	f, err := gguf.Open(model)
	require.NoError(t, err)
	defer f.Close()
	v, err := tokenizer.FromGGUF(f)
	require.NoError(t, err)
	tok, err := tokenizer.New(v)
	require.NoError(t, err)
	want := 0
	for _, text := range []string{"[system] Be brief.", "[user] Hello", "[assistant]"} {
		ids, err := tok.Encode(text, false)
		require.NoError(t, err)
		want += len(ids)
	}
	require.Equal(t, want+3+2, res.Usage.PromptTokens, "BOS x3 and EOS x2 are one token each")
}

// TestChatSaveCacheResumesExactly: /save FILE.gguf keeps the KV cache, and
// a new process that loads it answers the next message exactly as the
// first one did, after compressions.
func TestChatSaveCacheResumesExactly(t *testing.T) {
	gputest.Device(t)
	saved := filepath.Join(t.TempDir(), "chat.gguf")
	run := func(in string) (string, string) {
		cmd := exec.Command(binary, "chat", "-n", "24", "--cache-size", "40")
		cmd.Stdin = strings.NewReader(in)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		require.NoError(t, cmd.Run(), errb.String())
		return out.String(), errb.String()
	}
	first, stderr := run("Once upon a time there was a cat\nThe cat saw a dog\n/save " + saved + "\nThey played all day\n/stats\n")
	require.Contains(t, stderr, "and its KV cache")
	require.Regexp(t, `[1-9][0-9]* compressions`, stderr)
	second, stderr := run("/load " + saved + "\nThey played all day\n")
	require.Contains(t, stderr, "its KV cache restored")
	// The third reply of the first run is the only reply of the second.
	require.Greater(t, len(strings.TrimSpace(second)), 10, second)
	require.True(t, strings.HasSuffix(first, second), "resumed reply %q is not the end of the first run's %q", second, first)
}

// TestServeBadFlags: usage errors, including sessions that do not fit the
// memory given, exit 2 with one line.
func TestServeBadFlags(t *testing.T) {
	gputest.Device(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--parallel", "0"}, "--parallel 0"},
		{[]string{"serve", "--queue", "-1"}, "--queue"},
		{[]string{"serve", "--port", "70000"}, "--port"},
		{[]string{"serve", "--memory", "lots"}, "--memory"},
		{[]string{"serve", "--memory", "1MiB"}, "over the memory limit of 1.0 MiB"},
		{[]string{"serve", "--chat-template", "nope"}, "neither a built-in"},
		{[]string{"chat", "-n", "0"}, "-n 0"},
		{[]string{"chat", "--chat-template", "nope"}, "neither a built-in"},
	} {
		r := runCLI(t, c.args...)
		require.Equal(t, 2, r.code, "freqkv %v: %s", c.args, r.stderr)
		require.Contains(t, r.stderr, c.want)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, r.stderr)
	}
}
