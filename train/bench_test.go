package train_test

import (
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/train"
	"github.com/stretchr/testify/require"
)

// BenchmarkStories260K: one training step (forward, backward, AdamW) and
// one forward (the same grouped pass and loss, no gradients) over 2048
// tokens of stories260K with each cache policy in the loop (N = 512):
// tok/s of each and the step/forward ratio.
//
//	go test ./train -run '^$' -bench Stories260K -benchtime 3x
func BenchmarkStories260K(b *testing.B) {
	dev := gputest.Device(b)
	m, f, ids, _ := storiesB(b, dev)
	for _, c := range []kvcache.Spec{
		{Kind: kvcache.Full, Size: 2048, Storage: engine.F32},
		{Kind: kvcache.Window, Size: 512, Sink: 4, Storage: engine.F32},
		{Kind: kvcache.FreqKV, Size: 512, Sink: 4, Ratio: 0.5, Storage: engine.F32},
	} {
		cfg := train.Config{Cache: c, SeqLen: 2048, Rank: 8, Alpha: 16, Embeddings: true, Norms: true, Seed: 1}
		tr, err := train.New(m, f, cfg)
		require.NoError(b, err)
		data, err := train.NewData(ids, cfg.SeqLen, train.Text, 512, 1)
		require.NoError(b, err)
		seq := data.Next()
		b.Run(c.Kind.String()+"/step", func(b *testing.B) {
			for range b.N {
				_, err := tr.Step([][]int32{seq}, train.DefaultOptim(1e-3, 1))
				require.NoError(b, err)
			}
			b.ReportMetric(float64(cfg.SeqLen*b.N)/b.Elapsed().Seconds(), "tok/s")
			b.ReportMetric(float64(tr.Bytes())/(1<<20), "train-MiB")
		})
		b.Run(c.Kind.String()+"/forward", func(b *testing.B) {
			for range b.N {
				_, err := tr.Loss(seq)
				require.NoError(b, err)
			}
			b.ReportMetric(float64(cfg.SeqLen*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
		tr.Release()
	}
}
