package train_test

import (
	"os"
	"testing"
	"time"

	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/train"
	"github.com/stretchr/testify/require"
)

// BenchmarkStories260K: one training step (forward, backward, AdamW) and
// one forward (the same grouped pass and loss, no gradients) over 2048
// tokens of stories260K with each cache policy in the loop (N = 512):
// tok/s of each (wall time), the CPU time of each (on lavapipe the GPU is
// this process's threads; CPU time is what a loaded machine disturbs
// least), the step/forward ratio is theirs. Kernels are compiled before
// the timing (Trainer.Prepare).
//
//	go test ./train -run '^$' -bench Stories260K -benchtime 3x
func BenchmarkStories260K(b *testing.B) {
	dev := gputest.Device(b)
	m, f, ids, _ := storiesB(b, dev)
	for _, c := range benchPolicies() {
		benchPolicy(b, m, f, ids, benchConfig(c), c.Kind.String())
	}
}

// BenchmarkMedium: the same for bench's synthetic medium model (156M
// parameters, f16: dim 1024, 8 layers, GQA 16/4, FFN 2816, vocabulary
// 32000) at 2048 tokens with FreqKV (N = 512) in the loop, once with every
// layer's activations kept (no recompute) and once checkpointing only
// (every layer recomputed). Minutes per step on lavapipe: skipped with
// -short.
//
//	go test ./train -run '^$' -bench Medium -benchtime 1x -timeout 0
func BenchmarkMedium(b *testing.B) {
	if testing.Short() {
		b.Skip("the medium model takes minutes per step on lavapipe")
	}
	dev := gputest.Device(b)
	m, f, ids := mediumModel(b, dev)
	c := benchPolicies()[2]
	if p := os.Getenv("FREQKV_TRAIN_POLICY"); p != "" {
		for _, x := range benchPolicies() {
			if x.Kind.String() == p {
				c = x
			}
		}
	}
	cfg := benchConfig(c)
	cfg.ActivationBytes = 4 << 30
	benchPolicy(b, m, f, ids, cfg, c.Kind.String()+"/kept")
	cfg.ActivationBytes = -1
	benchPolicy(b, m, f, ids, cfg, c.Kind.String()+"/recomputed")
}

func benchPolicy(b *testing.B, m *llama.Model, f *gguf.File, ids []int32, cfg train.Config, name string) {
	tr, err := train.New(m, f, cfg)
	require.NoError(b, err)
	defer tr.Release()
	require.NoError(b, tr.Prepare())
	data, err := train.NewData(ids, cfg.SeqLen, train.Text, 512, 1)
	require.NoError(b, err)
	seq := data.Next()
	// run times b.N calls of one, reporting tok/s, CPU seconds and dispatches per call,
	// and returns the CPU time per call.
	run := func(b *testing.B, one func() error) time.Duration {
		c0, cpu0 := tr.Counts(), cpuTime()
		for range b.N {
			require.NoError(b, one())
		}
		cpu := (cpuTime() - cpu0) / time.Duration(b.N)
		b.ReportMetric(float64(cfg.SeqLen*b.N)/b.Elapsed().Seconds(), "tok/s")
		b.ReportMetric(cpu.Seconds(), "cpu-s/op")
		b.ReportMetric(float64(tr.Counts().Dispatches-c0.Dispatches)/float64(b.N), "dispatches/op")
		return cpu
	}
	var stepCPU, fwdCPU time.Duration
	b.Run(name+"/step", func(b *testing.B) {
		stepCPU = run(b, func() error {
			_, err := tr.Step([][]int32{seq}, train.DefaultOptim(1e-3, 1))
			return err
		})
		b.ReportMetric(float64(tr.Bytes())/(1<<20), "train-MiB")
		b.ReportMetric(float64(tr.KeptBytes())/(1<<20), "kept-MiB")
	})
	b.Run(name+"/forward", func(b *testing.B) {
		fwdCPU = run(b, func() error {
			_, err := tr.Loss(seq)
			return err
		})
		if stepCPU > 0 && fwdCPU > 0 {
			b.ReportMetric(stepCPU.Seconds()/fwdCPU.Seconds(), "step/fwd-cpu")
		}
	})
}
