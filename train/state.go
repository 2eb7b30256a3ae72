package train

import (
	"fmt"
	"io"
	"math"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/lora"
)

// Checkpoint metadata keys.
const (
	keyStep   = "freqkv.train.step"
	keyConfig = "freqkv.train.config"
	keyExtra  = "freqkv.train.extra"
	suffixM   = ".adam_m"
	suffixV   = ".adam_v"
)

// Adapter returns the trained tensors as a LoRA adapter in llama.cpp's
// layout (pairs on q, k, v, o; trained embeddings and norms as full tensors).
func (t *Trainer) Adapter() (*lora.Adapter, error) {
	vals, err := t.Values()
	if err != nil {
		return nil, err
	}
	a := &lora.Adapter{Arch: t.h.Arch, Alpha: t.cfg.Alpha}
	for _, p := range t.Params {
		a.Tensors = append(a.Tensors, lora.Tensor{Name: p.Name, Dims: dims(p), Data: vals[p.Name]})
	}
	return a, nil
}

func dims(p *Param) []uint64 {
	if p.Rows == 1 && !isMatrixName(p.Name) {
		return []uint64{uint64(p.Cols)}
	}
	return []uint64{uint64(p.Cols), uint64(p.Rows)}
}

func isMatrixName(name string) bool {
	n := len(name)
	return n > 7 && (name[n-7:] == ".lora_a" || name[n-7:] == ".lora_b") || name == "token_embd.weight"
}

// WriteCheckpoint writes every trainable tensor with its AdamW moments, the
// step count, a description of the configuration (checked on resume) and
// extra (the caller's state, e.g. the loss history) as a GGUF file.
func (t *Trainer) WriteCheckpoint(w io.Writer, config, extra string) error {
	var tensors []gguf.WriteTensor
	for _, p := range t.Params {
		for _, s := range []struct {
			suffix string
			x      *engine.Tensor
		}{{"", p.T()}, {suffixM, p.M}, {suffixV, p.V}} {
			v, err := s.x.ReadF32()
			if err != nil {
				return err
			}
			tensors = append(tensors, gguf.WriteTensor{Name: p.Name + s.suffix, Dims: dims(p), Type: ggml.F32, Data: f32bytes(v[:p.Elements()])})
		}
	}
	kv := []gguf.KV{
		{Key: "general.type", Value: "freqkv-train-checkpoint"},
		{Key: "general.architecture", Value: t.h.Arch},
		{Key: keyStep, Value: uint32(t.steps)},
		{Key: keyConfig, Value: config},
		{Key: keyExtra, Value: extra},
	}
	return gguf.Write(w, kv, tensors)
}

// LoadCheckpoint restores tensors, moments and step count from a
// checkpoint written with the same config, and returns its extra state.
func (t *Trainer) LoadCheckpoint(path, config string) (string, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	defer f.Close()
	str := func(key string) string {
		s, _ := f.String(key)
		return s
	}
	if got := str(keyConfig); got != config {
		return "", fmt.Errorf("checkpoint %s was written by another configuration (%s); this run is %s", path, got, config)
	}
	step, err := f.Uint(keyStep)
	if err != nil {
		return "", fmt.Errorf("checkpoint %s has no step count: %w", path, err)
	}
	for _, p := range t.Params {
		for _, s := range []struct {
			suffix string
			x      *engine.Tensor
		}{{"", p.T()}, {suffixM, p.M}, {suffixV, p.V}} {
			v, _, err := fileValues(f, p.Name+s.suffix)
			if err != nil {
				return "", fmt.Errorf("checkpoint %s: %w", path, err)
			}
			if len(v) != p.Elements() {
				return "", fmt.Errorf("checkpoint %s: %s has %d values, want %d", path, p.Name+s.suffix, len(v), p.Elements())
			}
			for _, x := range v {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					return "", fmt.Errorf("checkpoint %s: %s holds a non-finite value", path, p.Name+s.suffix)
				}
			}
			if err := s.x.UploadF32(v); err != nil {
				return "", err
			}
		}
	}
	t.steps = int(step)
	return str(keyExtra), nil
}
