package train_test

import (
	"bytes"
	"math"
	mrand "math/rand/v2"
	"sort"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/internal/gputest"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/cpuref"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/llama"
	"github.com/freqkv/freqkv/model/synth"
	"github.com/freqkv/freqkv/train"
	"github.com/freqkv/freqkv/trainref"
	"github.com/stretchr/testify/require"
)

// gradModels are small synthetic models with GQA and odd sizes: llama
// (adjacent RoPE pairs, untied classifier) and qwen2 (NeoX pairs, Q/K/V
// biases, classifier tied to the embedding).
func gradModels() map[string]synth.Spec {
	return map[string]synth.Spec{
		"llama-gqa-odd": {Arch: "llama", Dim: 36, Layers: 2, Heads: 3, KVHeads: 1, FFN: 26, Vocab: 261,
			Context: 64, WeightType: ggml.F32, RopeBase: 10000, Seed: 5},
		"qwen2-tied": {Arch: "qwen2", Dim: 24, Layers: 2, Heads: 4, KVHeads: 2, FFN: 18, Vocab: 263,
			Context: 64, WeightType: ggml.F32, Tied: true, RopeBase: 1e6, Seed: 6},
	}
}

// The FreqKV geometry: N = 16, S = 2, R = 1, g = 0.5, so L = 13 and m = 6
// (not powers of two); 48 tokens give 16 causal, then groups of 7: five
// compressions, the oldest rows compressed five times over.
var gradCache = kvcache.Spec{Kind: kvcache.FreqKV, Size: 16, Sink: 2, Recent: 1, Ratio: 0.5, Storage: engine.F32}

const gradSeq = 48

func caches() map[string]kvcache.Spec {
	return map[string]kvcache.Spec{
		"full":   {Kind: kvcache.Full, Size: gradSeq, Storage: engine.F32},
		"window": {Kind: kvcache.Window, Size: 13, Sink: 2, Storage: engine.F32},
		"freqkv": gradCache,
	}
}

func writeModel(t testing.TB, s synth.Spec) *gguf.File {
	var buf bytes.Buffer
	require.NoError(t, synth.WriteTo(&buf, s))
	f, err := gguf.Parse(buf.Bytes())
	require.NoError(t, err)
	return f
}

func loadGPU(t testing.TB, dev *engine.Device, f *gguf.File) *llama.Model {
	m, err := llama.Load(dev, f, llama.LoadOptions{})
	require.NoError(t, err)
	t.Cleanup(m.Release)
	return m
}

func randomSeq(n, vocab int, seed uint64) []int32 {
	rng := mrand.New(mrand.NewPCG(seed, 1))
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(rng.IntN(vocab))
	}
	return out
}

// relErr is |a-b| / |b| over whole tensors (norm-wise).
func relErr(a []float32, b []float64) float64 {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - b[i]
		num += d * d
		den += b[i] * b[i]
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// activationModes are the ways a step gets the backward's activations:
// every layer's kept from the forward (the default for small models), every
// layer recomputed from its checkpoint, and the first layer kept, the
// second recomputed. keep returns the Config.ActivationBytes of a mode and
// the layers it must keep, given the bytes of one layer's activations.
var activationModes = []struct {
	name string
	keep func(layers int, perLayer int64) (int64, int)
}{
	{"kept", func(layers int, _ int64) (int64, int) { return 0, layers }},
	{"recomputed", func(int, int64) (int64, int) { return -1, 0 }},
	{"first-kept", func(_ int, perLayer int64) (int64, int) { return perLayer, 1 }},
}

// newTrainer makes a trainer of cfg that keeps activations per mode.
func newTrainer(t *testing.T, m *llama.Model, f *gguf.File, cfg train.Config, mode int) *train.Trainer {
	tr, err := train.New(m, f, cfg)
	require.NoError(t, err)
	layers := m.H.Layers
	require.Equal(t, layers, tr.KeptLayers(), "a small model keeps every layer by default")
	budget, want := activationModes[mode].keep(layers, tr.KeptBytes()/int64(layers))
	if budget != 0 {
		tr.Release()
		cfg.ActivationBytes = budget
		tr, err = train.New(m, f, cfg)
		require.NoError(t, err)
	}
	require.Equal(t, want, tr.KeptLayers())
	return tr
}

// TestGradientsMatchReference: loss and the gradient of every trainable
// tensor (LoRA on q, k, v, o with B non-zero, embedding, norms) of the GPU
// step equal the float64 reference (trainref) over a sequence with five
// compressions in the loop, with activations kept, recomputed, or both.
// Tolerance: relative 1e-4 norm-wise per tensor (f32 kernels), 1e-5 on the
// loss.
func TestGradientsMatchReference(t *testing.T) {
	dev := gputest.Device(t)
	for mname, spec := range gradModels() {
		f := writeModel(t, spec)
		ref, err := cpuref.Load(f)
		require.NoError(t, err)
		m := loadGPU(t, dev, f)
		for cname, cache := range caches() {
			for mode, am := range activationModes {
				t.Run(mname+"/"+cname+"/"+am.name, func(t *testing.T) {
					tr := newTrainer(t, m, f, train.Config{Cache: cache, SeqLen: gradSeq, Rank: 3, Alpha: 5,
						Embeddings: true, Norms: true, Seed: 1}, mode)
					defer tr.Release()
					gradientsMatch(t, tr, ref, spec, cache)
				})
			}
		}
		// the compression adjoint through the DCT kernels instead of its matrix
		t.Run(mname+"/freqkv/dct-adjoint", func(t *testing.T) {
			defer func(v int) { *train.DenseAdjointMax = v }(*train.DenseAdjointMax)
			*train.DenseAdjointMax = 0
			tr := newTrainer(t, m, f, train.Config{Cache: gradCache, SeqLen: gradSeq, Rank: 3, Alpha: 5,
				Embeddings: true, Norms: true, Seed: 1}, 1)
			defer tr.Release()
			gradientsMatch(t, tr, ref, spec, gradCache)
		})
	}
}

func gradientsMatch(t *testing.T, tr *train.Trainer, ref *cpuref.Model, spec synth.Spec, cache kvcache.Spec) {
	if cache.Kind == kvcache.FreqKV {
		require.Equal(t, 5, tr.Schedule().Compressions())
	}
	p, err := trainref.NewLoRA(ref, trainref.LoRAOptions{Rank: 3, Alpha: 5, Embedding: true, Norms: true, BScale: 0.3, Seed: 9})
	require.NoError(t, err)
	require.Len(t, tr.Params, len(p.Tensors))
	setParams(t, tr, p)
	seq := randomSeq(gradSeq+1, spec.Vocab, 3)
	toks := ints(seq)
	wantLoss, want, err := trainref.LossAndGrads(ref, p, toks, cache)
	require.NoError(t, err)
	loss, got, err := tr.Gradients(seq)
	require.NoError(t, err)
	require.InDelta(t, wantLoss, loss, 1e-5*wantLoss, "loss")
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	worst := 0.0
	for _, n := range names {
		e := relErr(got[n], want[n])
		worst = max(worst, e)
		if e >= 1e-4 {
			t.Errorf("%s: relative error %.2e", n, e)
		}
	}
	t.Logf("loss %.6f (ref %.6f), worst gradient relative error %.2e over %d tensors", loss, wantLoss, worst, len(names))
}

// setParams gives the trainer the reference's tensors, and the reference
// their f32 rounding.
func setParams(t *testing.T, tr *train.Trainer, p trainref.Params) {
	require.Len(t, tr.Params, len(p.Tensors))
	for name, v := range p.Tensors {
		v32 := make([]float32, len(v))
		for i, x := range v {
			v32[i] = float32(x)
			v[i] = float64(v32[i])
		}
		require.NoError(t, tr.SetParam(name, v32), name)
	}
}

func ints(seq []int32) []int {
	out := make([]int, len(seq))
	for i, x := range seq {
		out[i] = int(x)
	}
	return out
}

// TestGradientsAllMatrices: training every matrix whole (q, k, v, o, gate,
// up, down, the embedding, an untied classifier) and the norms, the
// gradients equal the reference's, with FreqKV in the loop, activations
// kept or recomputed.
func TestGradientsAllMatrices(t *testing.T) {
	dev := gputest.Device(t)
	for mname, spec := range gradModels() {
		f := writeModel(t, spec)
		ref, err := cpuref.Load(f)
		require.NoError(t, err)
		m := loadGPU(t, dev, f)
		for mode, am := range activationModes[:2] {
			t.Run(mname+"/"+am.name, func(t *testing.T) {
				tr := newTrainer(t, m, f, train.Config{Cache: gradCache, SeqLen: gradSeq, All: true, Norms: true, Seed: 1}, mode)
				defer tr.Release()
				p := trainref.Params{Alpha: 1, Tensors: map[string][]float64{}}
				vals, err := tr.Values()
				require.NoError(t, err)
				for name, v := range vals {
					p.Tensors[name] = make([]float64, len(v))
					for i, x := range v {
						p.Tensors[name][i] = float64(x)
					}
				}
				want := 7*spec.Layers + 2*spec.Layers + 2 // matrices, norms, embedding, output norm
				if !spec.Tied {
					want++
				}
				require.Len(t, vals, want)
				seq := randomSeq(gradSeq+1, spec.Vocab, 4)
				wantLoss, grads, err := trainref.LossAndGrads(ref, p, ints(seq), gradCache)
				require.NoError(t, err)
				loss, got, err := tr.Gradients(seq)
				require.NoError(t, err)
				require.InDelta(t, wantLoss, loss, 1e-5*wantLoss)
				worst := 0.0
				for n, g := range grads {
					e := relErr(got[n], g)
					worst = max(worst, e)
					if e >= 1e-4 {
						t.Errorf("%s: relative error %.2e", n, e)
					}
				}
				t.Logf("worst gradient relative error %.2e over %d tensors", worst, len(grads))
			})
		}
	}
}

// TestGradientsLongGroup: one 300-token group at head dim 64, whose
// attention backward runs past llvmpipe's 65535 loop iterations per
// invocation unless the launchers chunk it (dk, dv were wrong: relative
// errors 0.6-0.8 on the attn_k/attn_v LoRA and attn_norm gradients).
func TestGradientsLongGroup(t *testing.T) {
	dev := gputest.Device(t)
	spec := synth.Spec{Arch: "llama", Dim: 128, Heads: 2, KVHeads: 1, FFN: 64, Layers: 1, Vocab: 300,
		Context: 512, WeightType: ggml.F32, RopeBase: 10000, Seed: 1}
	const seqLen = 300
	f := writeModel(t, spec)
	ref, err := cpuref.Load(f)
	require.NoError(t, err)
	m := loadGPU(t, dev, f)
	cache := kvcache.Spec{Kind: kvcache.Full, Size: seqLen, Storage: engine.F32}
	tr, err := train.New(m, f, train.Config{Cache: cache, SeqLen: seqLen, Rank: 2, Alpha: 4, Norms: true, Seed: 1})
	require.NoError(t, err)
	defer tr.Release()
	p, err := trainref.NewLoRA(ref, trainref.LoRAOptions{Rank: 2, Alpha: 4, Norms: true, BScale: 0.3, Seed: 9})
	require.NoError(t, err)
	setParams(t, tr, p)
	seq := randomSeq(seqLen+1, spec.Vocab, 4)
	wantLoss, want, err := trainref.LossAndGrads(ref, p, ints(seq), cache)
	require.NoError(t, err)
	loss, got, err := tr.Gradients(seq)
	require.NoError(t, err)
	require.InDelta(t, wantLoss, loss, 1e-5*wantLoss, "loss")
	for n, w := range want {
		if e := relErr(got[n], w); e >= 1e-4 {
			t.Errorf("%s: relative error %.2e", n, e)
		}
	}
}

// TestPrepareChangesNothing: compiling a step's kernels ahead (Prepare)
// leaves the gradients bit-identical to a trainer that did not.
func TestPrepareChangesNothing(t *testing.T) {
	dev := gputest.Device(t)
	spec := gradModels()["llama-gqa-odd"]
	f := writeModel(t, spec)
	m := loadGPU(t, dev, f)
	for cname, cache := range caches() {
		t.Run(cname, func(t *testing.T) {
			seq := randomSeq(gradSeq+1, spec.Vocab, 5)
			grads := func(prepare bool) map[string][]float32 {
				tr, err := train.New(m, f, train.Config{Cache: cache, SeqLen: gradSeq, Rank: 3, Alpha: 5, Embeddings: true, Norms: true, Seed: 1})
				require.NoError(t, err)
				defer tr.Release()
				if prepare {
					require.NoError(t, tr.Prepare())
				}
				_, g, err := tr.Gradients(seq)
				require.NoError(t, err)
				return g
			}
			require.Equal(t, grads(false), grads(true))
		})
	}
}
