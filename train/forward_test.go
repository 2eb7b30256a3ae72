package train_test

import (
	"testing"

	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/model/cpuref"
	"github.com/freqkv/freqkv/train"
	"github.com/freqkv/freqkv/trainref"
	"github.com/stretchr/testify/require"
)

// TestLossMatchesReference: the training forward's loss (every policy, LoRA
// with B non-zero) equals the float64 reference's.
func TestLossMatchesReference(t *testing.T) {
	dev := gputest.Device(t)
	for mname, spec := range gradModels() {
		f := writeModel(t, spec)
		ref, err := cpuref.Load(f)
		require.NoError(t, err)
		m := loadGPU(t, dev, f)
		for cname, cache := range caches() {
			t.Run(mname+"/"+cname, func(t *testing.T) {
				tr, err := train.New(m, f, train.Config{Cache: cache, SeqLen: gradSeq, Rank: 3, Alpha: 5, Embeddings: true, Norms: true, Seed: 1})
				require.NoError(t, err)
				defer tr.Release()
				p, err := trainref.NewLoRA(ref, trainref.LoRAOptions{Rank: 3, Alpha: 5, Embedding: true, Norms: true, BScale: 0.3, Seed: 9})
				require.NoError(t, err)
				setParams(t, tr, p)
				seq := randomSeq(gradSeq+1, spec.Vocab, 3)
				want, err := trainref.Loss(ref, p, ints(seq), cache)
				require.NoError(t, err)
				got, err := tr.Loss(seq)
				require.NoError(t, err)
				require.InDelta(t, want, got, 1e-5*want)
			})
		}
	}
}
