package llama

import (
	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

// LayerTensors are one block's weights on the device, in their file types.
type LayerTensors struct {
	AttnNorm, FFNNorm *engine.Tensor // f32 (1, dim)
	Wq, Wk, Wv, Wo    *engine.Weight
	Bq, Bk, Bv        *engine.Tensor // qwen2 biases, else nil
	Gate, Up, Down    *engine.Weight
}

// Tensors are a model's uploaded weights, for code that runs its own
// passes over them (training); they stay owned by the model.
type Tensors struct {
	Embedding  *engine.Weight // (vocab, dim)
	Layers     []LayerTensors
	OutputNorm *engine.Tensor // f32 (1, dim)
	Output     *engine.Weight // (vocab, dim); Embedding when tied
}

// Tensors returns the model's device weights.
func (m *Model) Tensors() Tensors {
	t := Tensors{Embedding: m.tokEmbd, OutputNorm: m.outNorm, Output: m.output}
	for _, l := range m.layers {
		t.Layers = append(t.Layers, LayerTensors{
			AttnNorm: l.attnNorm, FFNNorm: l.ffnNorm,
			Wq: l.wq, Wk: l.wk, Wv: l.wv, Wo: l.wo, Bq: l.bq, Bk: l.bk, Bv: l.bv,
			Gate: l.wGate, Up: l.wUp, Down: l.wDown,
		})
	}
	return t
}

// Ops is the kernel launchers of the model's device.
func (m *Model) Ops() *shaders.Ops { return m.ops }
