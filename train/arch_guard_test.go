package train_test

import (
	"testing"

	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/synth"
	"github.com/freqkv/freqkv/train"
	"github.com/stretchr/testify/require"
)

// TestRefusesWhatTheTrainingForwardLacks: models whose forward pass needs
// more than the trainer rebuilds (Llama 3 rope factors, YaRN, qwen3's Q/K
// norms, a sliding window, K-quant matrices the backward kernels can't read)
// are refused by name, never trained on a different model.
func TestRefusesWhatTheTrainingForwardLacks(t *testing.T) {
	dev := gputest.Device(t)
	base := synth.Spec{Arch: "llama", Dim: 32, Layers: 1, Heads: 4, KVHeads: 2, FFN: 64, Vocab: 272, Context: 64, WeightType: ggml.F32, RopeBase: 10000, Seed: 1}
	l3, yarn, qwen3, swa, kq := base, base, base, base, base
	l3.Llama3 = &synth.Llama3Rope{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OrigContext: 32}
	yarn.Yarn = &synth.YarnRope{Factor: 4, OrigContext: 32}
	qwen3.Arch = "qwen3"
	swa.SlidingWindow = 16
	kq.Dim, kq.FFN, kq.WeightType = 256, 256, ggml.Q4_K
	for want, spec := range map[string]synth.Spec{
		"rope type llama3": l3, "rope type yarn": yarn, "query/key norms": qwen3, "sliding attention window": swa, "is q4_k": kq,
	} {
		f := writeModel(t, spec)
		m := loadGPU(t, dev, f)
		_, err := train.New(m, f, train.Config{Cache: gradCache, SeqLen: gradSeq, Rank: 3, Alpha: 5, Seed: 1})
		require.ErrorContains(t, err, want)
	}
	// Loaded for training, K-quant matrices are converted to q8_0 and train.
	f := writeModel(t, kq)
	m, err := llama.Load(dev, f, llama.LoadOptions{BackwardTypes: true})
	require.NoError(t, err)
	defer m.Release()
	require.Equal(t, []string{"Q4_K -> q8_0 (token_embd.weight and 8 more)"}, m.Converted)
	tr, err := train.New(m, f, train.Config{Cache: gradCache, SeqLen: gradSeq, Rank: 3, Alpha: 5, Seed: 1})
	require.NoError(t, err)
	tr.Release()
}
