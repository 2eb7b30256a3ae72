package trainref

import (
	"fmt"
	"github.com/freqkv/freqkv/kvcache"
	"slices"
	"strings"

	"github.com/freqkv/freqkv/model/cpuref"
	"github.com/freqkv/freqkv/model/lora"
)

// Adapter converts p to a LoRA adapter for m (values rounded to float32), in the layout of
// package lora: pairs with A of dims {in, rank} and B of dims {rank, out}, full tensors with
// the model's dims. Tensors are in name order.
func (p Params) Adapter(m *cpuref.Model) (*lora.Adapter, error) {
	if _, err := newRun(m, p, kvcache.Spec{Kind: kvcache.Full, Size: 1}, false); err != nil {
		return nil, err
	}
	a := &lora.Adapter{Arch: m.HP.Arch, Alpha: p.Alpha}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range p.Tensors {
			if !yield(n) {
				return
			}
		}
	}) {
		v := p.Tensors[name]
		var dims []uint64
		if target, ok := strings.CutSuffix(name, lora.SuffixA); ok {
			in := inputs(m, target)
			dims = []uint64{uint64(in), uint64(len(v) / in)}
		} else if target, ok := strings.CutSuffix(name, lora.SuffixB); ok {
			rank := len(p.Tensors[target+lora.SuffixA]) / inputs(m, target)
			dims = []uint64{uint64(rank), uint64(len(v) / rank)}
		} else if strings.HasSuffix(name, "_norm.weight") || strings.HasSuffix(name, ".bias") {
			dims = []uint64{uint64(len(v))}
		} else {
			in := m.HP.Dim
			if strings.HasPrefix(name, "blk.") {
				in = inputs(m, name)
			}
			dims = []uint64{uint64(in), uint64(len(v) / in)}
		}
		x := make([]float32, len(v))
		for i, f := range v {
			x[i] = float32(f)
		}
		a.Tensors = append(a.Tensors, lora.Tensor{Name: name, Dims: dims, Data: x})
	}
	return a, nil
}

// ParamsFromAdapter returns an adapter's tensors as trainable parameters.
func ParamsFromAdapter(a *lora.Adapter) (Params, error) {
	if a.Alpha == 0 {
		return Params{}, fmt.Errorf("trainref: the adapter's alpha is 0, which llama.cpp reads as a factor of 1; trainref needs alpha > 0")
	}
	p := Params{Alpha: a.Alpha, Tensors: map[string][]float64{}}
	for _, t := range a.Tensors {
		v := make([]float64, len(t.Data))
		for i, f := range t.Data {
			v[i] = float64(f)
		}
		p.Tensors[t.Name] = v
	}
	return p, nil
}
