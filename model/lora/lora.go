// Package lora reads, writes, checks and merges LoRA adapters in llama.cpp's GGUF adapter
// layout, with the full tensors a FreqKV fine-tune also trains.
//
// # The file
//
// Metadata: general.architecture (the base model's), general.type = "adapter",
// adapter.type = "lora", adapter.lora.alpha (float32). Tensors:
//
//   - LoRA pairs, for a base matrix W called NAME (e.g. "blk.0.attn_q.weight") with in inputs
//     and out outputs (GGUF dims {in, out}): NAME.lora_a with dims {in, rank} (row-major A of
//     shape (rank, in)) and NAME.lora_b with dims {rank, out} (B of shape (out, rank)). The
//     adapted map is y = W·x + scale·(alpha/rank)·B·A·x, scale being the user's --lora-scale
//     (llama.cpp's rule, including alpha = 0 meaning a factor of 1 instead of alpha/rank).
//   - Full tensors, under the base tensor's own name and dims (token embeddings, norm weights,
//     or any tensor a full fine-tune trained): they replace the base tensor, blended as
//     base + scale·(full - base), so scale 1 replaces and scale 0 is the base.
//
// llama.cpp loads the pairs, skips "*_norm.weight" tensors, and rejects any other full
// tensor (token_embd.weight among them): an adapter with a trained embedding loads only here
// or, after `freqkv merge`, anywhere as a plain model.
//
// # Merging
//
// Merge computes W' = W + scale·(alpha/rank)·B·A in float64 for every pair and returns the
// changed tensors: in the base's type for F32 and F16 bases, and in F16 for every other type
// (BF16, Q8_0, Q4_0, K-quants). Requantising would round the update away: a LoRA update is
// typically around a thousandth of a weight, far below a Q4_0 step (1/8 of a block's largest
// weight) and comparable to Q8_0's. The price is memory: each adapted matrix takes 2 bytes per
// weight instead of ~0.56 (Q4_0) or ~1.06 (Q8_0); for LLaMA-2-7B's q, k, v and o (2.1G weights)
// that is 4.3 GB instead of 1.2 GB (Q4_0) or 2.3 GB (Q8_0). Merge reports it in its notes.
package lora

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
)

// Metadata keys and values of llama.cpp's adapter files.
const (
	KeyType     = "general.type"
	KeyArch     = "general.architecture"
	KeyAdapter  = "adapter.type"
	KeyAlpha    = "adapter.lora.alpha"
	TypeAdapter = "adapter"
	AdapterLoRA = "lora"
)

// Suffixes of a LoRA pair's tensors.
const (
	SuffixA = ".lora_a"
	SuffixB = ".lora_b"
)

// Tensor is one tensor of an adapter, in float32. Dims are in GGUF order (Dims[0] is the
// contiguous row length): A of a pair is {in, rank}, B is {rank, out}.
type Tensor struct {
	Name string
	Dims []uint64
	Data []float32
}

// Adapter is a LoRA adapter with optional full tensors.
type Adapter struct {
	Arch    string   // the base model's general.architecture
	Alpha   float64  // adapter.lora.alpha
	Tensors []Tensor // in file order
}

// pair is a LoRA pair, by the name of the base tensor it adapts.
type pair struct {
	a, b          *Tensor
	in, out, rank int
}

// split returns the pairs (by base name, in the order of their A tensors) and the full tensors,
// and checks that the pairs are complete and consistent.
func (a *Adapter) split() (names []string, pairs map[string]*pair, full []*Tensor, err error) {
	pairs = map[string]*pair{}
	seen := map[string]bool{}
	for i := range a.Tensors {
		t := &a.Tensors[i]
		if seen[t.Name] {
			return nil, nil, nil, fmt.Errorf("lora: tensor %s appears twice", t.Name)
		}
		seen[t.Name] = true
		n := uint64(1)
		for _, d := range t.Dims {
			n *= d
		}
		if len(t.Dims) == 0 || n != uint64(len(t.Data)) {
			return nil, nil, nil, fmt.Errorf("lora: tensor %s has %d values for dims %v", t.Name, len(t.Data), t.Dims)
		}
		base, isA := strings.CutSuffix(t.Name, SuffixA)
		if !isA {
			var isB bool
			if base, isB = strings.CutSuffix(t.Name, SuffixB); !isB {
				full = append(full, t)
				continue
			}
		}
		p := pairs[base]
		if p == nil {
			p = &pair{}
			pairs[base] = p
			names = append(names, base)
		}
		if len(t.Dims) != 2 {
			return nil, nil, nil, fmt.Errorf("lora: %s has %d dimensions, want 2", t.Name, len(t.Dims))
		}
		if isA {
			p.a = t
		} else {
			p.b = t
		}
	}
	for _, base := range names {
		p := pairs[base]
		switch {
		case p.a == nil:
			return nil, nil, nil, fmt.Errorf("lora: %s%s has no %s%s", base, SuffixB, base, SuffixA)
		case p.b == nil:
			return nil, nil, nil, fmt.Errorf("lora: %s%s has no %s%s", base, SuffixA, base, SuffixB)
		case p.a.Dims[1] != p.b.Dims[0]:
			return nil, nil, nil, fmt.Errorf("lora: %s%s has rank %d but %s%s rank %d (A is {in, rank}, B {rank, out})",
				base, SuffixA, p.a.Dims[1], base, SuffixB, p.b.Dims[0])
		}
		p.in, p.rank, p.out = int(p.a.Dims[0]), int(p.a.Dims[1]), int(p.b.Dims[1])
	}
	return names, pairs, full, nil
}

// Write writes a as a GGUF adapter file, tensors in F32.
func Write(w io.Writer, a *Adapter) error {
	if _, _, _, err := a.split(); err != nil {
		return err
	}
	if a.Arch == "" {
		return errors.New("lora: the adapter names no architecture")
	}
	if !(a.Alpha >= 0) || math.IsInf(a.Alpha, 0) {
		return fmt.Errorf("lora: alpha %v is not a non-negative number", a.Alpha)
	}
	kv := []gguf.KV{
		{Key: KeyArch, Value: a.Arch},
		{Key: KeyType, Value: TypeAdapter},
		{Key: KeyAdapter, Value: AdapterLoRA},
		{Key: KeyAlpha, Value: float32(a.Alpha)},
	}
	tensors := make([]gguf.WriteTensor, len(a.Tensors))
	for i, t := range a.Tensors {
		data, err := ggml.Quantize(ggml.F32, t.Data)
		if err != nil {
			return fmt.Errorf("lora: tensor %s: %w", t.Name, err)
		}
		tensors[i] = gguf.WriteTensor{Name: t.Name, Dims: t.Dims, Type: ggml.F32, Data: data}
	}
	if err := gguf.Write(w, kv, tensors); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	return nil
}

// Read reads an adapter from a parsed GGUF file; its tensors may have any type the project
// can dequantise (llama.cpp's converter writes F16, F32 or Q8_0).
func Read(f *gguf.File) (*Adapter, error) {
	typ, err := f.String(KeyType)
	if err != nil || typ != TypeAdapter {
		return nil, fmt.Errorf("lora: not an adapter (%s is %q, want %q); pass a LoRA adapter GGUF, not a model", KeyType, typ, TypeAdapter)
	}
	if at, err := f.String(KeyAdapter); err != nil || at != AdapterLoRA {
		return nil, fmt.Errorf("lora: adapter type %q is not supported (want %q)", at, AdapterLoRA)
	}
	a := &Adapter{}
	if a.Arch, err = f.String(KeyArch); err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	if _, ok := f.Value(KeyAlpha); ok { // absent: 0, as llama.cpp reads it
		if a.Alpha, err = f.Float(KeyAlpha); err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		if !(a.Alpha >= 0) || math.IsInf(a.Alpha, 0) {
			return nil, fmt.Errorf("lora: %s %v is not a non-negative number", KeyAlpha, a.Alpha)
		}
	}
	for _, info := range f.Tensors {
		data, err := f.TensorData(&info)
		if err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		x, err := ggml.Dequantize(info.Type, data, int(info.Elements()))
		if err != nil {
			return nil, fmt.Errorf("lora: tensor %s: %w", info.Name, err)
		}
		a.Tensors = append(a.Tensors, Tensor{Name: info.Name, Dims: slices.Clone(info.Dims), Data: x})
	}
	if len(a.Tensors) == 0 {
		return nil, errors.New("lora: the adapter has no tensors")
	}
	if _, _, _, err := a.split(); err != nil {
		return nil, err
	}
	return a, nil
}

// Open reads the adapter file at path.
func Open(path string) (*Adapter, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Check reports whether a fits base: the same architecture, and every tensor it adapts or
// replaces present in base with matching dimensions. The error names the first tensor (in
// the adapter's order) that does not fit.
func (a *Adapter) Check(base *gguf.File) error {
	names, pairs, full, err := a.split()
	if err != nil {
		return err
	}
	if arch, _ := base.String(KeyArch); arch != a.Arch {
		return fmt.Errorf("lora: the adapter is for architecture %q, the model is %q", a.Arch, arch)
	}
	for _, t := range a.Tensors {
		name, ok := strings.CutSuffix(t.Name, SuffixA)
		if !ok {
			if name, ok = strings.CutSuffix(t.Name, SuffixB); !ok {
				continue
			}
		}
		if slices.Index(names, name) < 0 {
			continue
		}
		p := pairs[name]
		info, ok := base.Tensor(name)
		switch {
		case !ok:
			return fmt.Errorf("lora: adapter tensor %s adapts %s, which the model does not have; the adapter was made for another model", t.Name, name)
		case len(info.Dims) != 2 || info.Dims[0] != uint64(p.in) || info.Dims[1] != uint64(p.out):
			return fmt.Errorf("lora: adapter tensor %s is for a %d x %d matrix (in x out) but the model's %s is %s; the adapter was made for another model",
				t.Name, p.in, p.out, name, dimsString(info.Dims))
		}
	}
	for _, t := range full {
		info, ok := base.Tensor(t.Name)
		switch {
		case !ok:
			return fmt.Errorf("lora: adapter tensor %s is neither half of a LoRA pair (%s, %s) nor a tensor of the model; the adapter was made for another model",
				t.Name, SuffixA, SuffixB)
		case !slices.Equal(info.Dims, t.Dims):
			return fmt.Errorf("lora: adapter tensor %s is %s but the model's is %s; the adapter was made for another model",
				t.Name, dimsString(t.Dims), dimsString(info.Dims))
		}
	}
	return nil
}

// Merge returns the tensors of base that a changes, merged with the adapter at scale (see
// the package comment), and notes for the user on type changes and their memory cost. A pair
// whose B is zero (or a scale of 0) and a full tensor equal to the base's change nothing, so
// they leave the tensor out, in its own type, even in a quantised model.
func Merge(base *gguf.File, a *Adapter, scale float64) ([]gguf.WriteTensor, []string, error) {
	if err := a.Check(base); err != nil {
		return nil, nil, err
	}
	if math.IsNaN(scale) || math.IsInf(scale, 0) {
		return nil, nil, fmt.Errorf("lora: scale %v is not a number", scale)
	}
	names, pairs, full, _ := a.split()
	var out []gguf.WriteTensor
	widened := map[ggml.Type][]string{}
	var extra int64
	load := func(name string) (*gguf.TensorInfo, []float64, error) {
		info, _ := base.Tensor(name)
		data, err := base.TensorData(info)
		if err != nil {
			return nil, nil, fmt.Errorf("lora: %w", err)
		}
		x, err := ggml.Dequantize(info.Type, data, int(info.Elements()))
		if err != nil {
			return nil, nil, fmt.Errorf("lora: model tensor %s: %w", name, err)
		}
		w := make([]float64, len(x))
		for i, v := range x {
			w[i] = float64(v)
		}
		return info, w, nil
	}
	store := func(info *gguf.TensorInfo, w []float64) error {
		typ := info.Type
		if typ != ggml.F32 && typ != ggml.F16 {
			widened[typ] = append(widened[typ], info.Name)
			typ = ggml.F16
			extra += int64(2*len(w)) - int64(info.Bytes())
		}
		x := make([]float32, len(w))
		for i, v := range w {
			x[i] = float32(v)
		}
		data, err := ggml.Quantize(typ, x)
		if err != nil {
			return fmt.Errorf("lora: merged %s: %w", info.Name, err)
		}
		out = append(out, gguf.WriteTensor{Name: info.Name, Dims: slices.Clone(info.Dims), Type: typ, Data: data})
		return nil
	}
	for _, name := range names {
		p := pairs[name]
		f := scale
		if a.Alpha != 0 {
			f = scale * a.Alpha / float64(p.rank)
		}
		if f == 0 || !slices.ContainsFunc(p.b.Data, func(v float32) bool { return v != 0 }) {
			continue // no update: the tensor stays as it is, in its own type
		}
		info, w, err := load(name)
		if err != nil {
			return nil, nil, err
		}
		// W (out, in) += f · B (out, rank) · A (rank, in)
		for i := range p.out {
			row := w[i*p.in : (i+1)*p.in]
			for k := range p.rank {
				c := f * float64(p.b.Data[i*p.rank+k])
				if c == 0 {
					continue
				}
				for j, av := range p.a.Data[k*p.in : (k+1)*p.in] {
					row[j] += c * float64(av)
				}
			}
		}
		if err := store(info, w); err != nil {
			return nil, nil, err
		}
	}
	for _, t := range full {
		info, w, err := load(t.Name)
		if err != nil {
			return nil, nil, err
		}
		same := true
		for i, v := range t.Data {
			same = same && float64(v) == w[i]
			w[i] += scale * (float64(v) - w[i])
		}
		if same || scale == 0 {
			continue // the base's own values: the tensor stays as it is
		}
		if err := store(info, w); err != nil {
			return nil, nil, err
		}
	}
	var notes []string
	for _, typ := range slices.Sorted(maps.Keys(widened)) {
		ns := widened[typ]
		notes = append(notes, fmt.Sprintf("merged %d %s tensors (%s...) as F16, since requantising would round the adapter away", len(ns), typ, ns[0]))
	}
	if extra > 0 {
		notes = append(notes, fmt.Sprintf("the F16 merged tensors take %s more than the quantised ones", humanBytes(extra)))
	}
	return out, notes, nil
}

// Apply returns base with a merged into it (a File that owns base), for loading, and Merge's
// notes.
func Apply(base *gguf.File, a *Adapter, scale float64) (*gguf.File, []string, error) {
	tensors, notes, err := Merge(base, a, scale)
	if err != nil {
		return nil, nil, err
	}
	f, err := base.WithTensors(tensors)
	if err != nil {
		return nil, nil, fmt.Errorf("lora: %w", err)
	}
	return f, notes, nil
}

// WriteMerged writes base with a merged into it as a complete GGUF model: base's metadata and
// every tensor, the merged ones replaced.
func WriteMerged(w io.Writer, base *gguf.File, a *Adapter, scale float64) ([]string, error) {
	merged, notes, err := Merge(base, a, scale)
	if err != nil {
		return nil, err
	}
	byName := map[string]gguf.WriteTensor{}
	for _, t := range merged {
		byName[t.Name] = t
	}
	var kv []gguf.KV
	for _, k := range base.Keys() {
		v, _ := base.Value(k)
		kv = append(kv, gguf.KV{Key: k, Value: v})
	}
	tensors := make([]gguf.WriteTensor, len(base.Tensors))
	for i := range base.Tensors {
		info := &base.Tensors[i]
		if t, ok := byName[info.Name]; ok {
			tensors[i] = t
			continue
		}
		data, err := base.TensorData(info)
		if err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		tensors[i] = gguf.WriteTensor{Name: info.Name, Dims: info.Dims, Type: info.Type, Data: data}
	}
	if err := gguf.Write(w, kv, tensors); err != nil {
		return nil, fmt.Errorf("lora: writing the merged model: %w", err)
	}
	return notes, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}

// dimsString writes GGUF dims as "64 x 32" (in GGUF order: row length first).
func dimsString(d []uint64) string {
	s := make([]string, len(d))
	for i, v := range d {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, " x ")
}
