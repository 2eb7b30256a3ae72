package train

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
)

// LoRA targets, in the order of a layer's forward.
const (
	TargetQ = iota
	TargetK
	TargetV
	TargetO
	numTargets
)

var targetNames = [numTargets]string{"attn_q", "attn_k", "attn_v", "attn_output"}

// A block's matrices (the LoRA targets first), for training every matrix.
const (
	MatGate = numTargets + iota
	MatUp
	MatDown
	numMats
)

var matNames = [numMats]string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}

// ErrParamTooLarge is wrapped by errors of a trainable tensor that does not
// fit one storage binding of the device in f32.
var ErrParamTooLarge = errors.New("trainable tensor too large")

// Param is one trainable f32 tensor on the device with its gradient and
// AdamW moments. Value is a one-part weight so the matrix kernels read it;
// Value.Parts[0] is the tensor the optimiser updates.
type Param struct {
	Name       string // GGUF name: blk.N.attn_q.weight.lora_a, token_embd.weight, ...
	Rows, Cols int
	Value      *engine.Weight
	Grad       *engine.Tensor
	M, V       *engine.Tensor
	// Decay says whether AdamW's weight decay applies (matrices, not norms).
	Decay bool
}

// T is the value as a tensor.
func (p *Param) T() *engine.Tensor { return p.Value.Parts[0] }

// Elements is Rows*Cols.
func (p *Param) Elements() int { return p.Rows * p.Cols }

func (p *Param) release() {
	for _, t := range []*engine.Tensor{p.Grad, p.M, p.V} {
		if t != nil {
			t.Release()
		}
	}
	if p.Value != nil {
		p.Value.Release()
	}
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// newParam uploads an initial value and zeroed gradient and moments.
func newParam(dev *engine.Device, name string, rows, cols int, init []float32, decay bool) (*Param, error) {
	if len(init) != rows*cols {
		return nil, fmt.Errorf("parameter %s: %d initial values for [%d,%d]", name, len(init), rows, cols)
	}
	p := &Param{Name: name, Rows: rows, Cols: cols, Decay: decay}
	var err error
	if p.Value, err = dev.UploadWeight(name, engine.F32, rows, cols, f32bytes(init), 0); err != nil {
		return nil, fmt.Errorf("parameter %s: %w", name, err)
	}
	if len(p.Value.Parts) != 1 {
		p.release()
		return nil, fmt.Errorf("%w: parameter %s [%d,%d] is %d bytes in f32, over the device's storage binding limit of %d", ErrParamTooLarge, name, rows, cols, 4*rows*cols, dev.MaxBinding())
	}
	zero := make([]byte, 4*rows*cols)
	for _, dst := range []**engine.Tensor{&p.Grad, &p.M, &p.V} {
		t, err := dev.NewTensor(name+" state", engine.F32, rows, cols)
		if err == nil {
			err = t.Upload(zero)
		}
		if err != nil {
			p.release()
			return nil, fmt.Errorf("parameter %s: %w", name, err)
		}
		*dst = t
	}
	return p, nil
}

// fileValues reads a tensor of the model file as f32.
func fileValues(f *gguf.File, name string) ([]float32, []uint64, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, nil, fmt.Errorf("model has no tensor %q", name)
	}
	data, err := f.TensorData(t)
	if err != nil {
		return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	v, err := ggml.Dequantize(t.Type, data, int(t.Elements()))
	if err != nil {
		return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return v, t.Dims, nil
}

// loraInit is PEFT's: A uniform in ±1/sqrt(in) (Kaiming-uniform with a =
// sqrt(5)), B zero, so training starts from the base model exactly.
func loraInit(rng *rand.Rand, rank, in int) []float32 {
	a := make([]float32, rank*in)
	bound := 1 / math.Sqrt(float64(in))
	for i := range a {
		a[i] = float32((2*rng.Float64() - 1) * bound)
	}
	return a
}
