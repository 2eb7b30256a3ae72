package lora_test

import (
	"bytes"
	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/freqkv/freqkv/model/cpuref"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	. "github.com/freqkv/freqkv/model/lora"
	"github.com/freqkv/freqkv/model/synth"
	"github.com/freqkv/freqkv/trainref"
)

func tinySpec(wt ggml.Type) synth.Spec {
	return synth.Spec{Arch: "llama", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 270,
		Context: 64, WeightType: wt, RopeBase: 10000, Seed: 11}
}

func model(t testing.TB, s synth.Spec) *gguf.File {
	t.Helper()
	var buf bytes.Buffer
	if err := synth.WriteTo(&buf, s); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fromParams turns trainref parameters into an adapter (values rounded to float32) and
// returns the parameters as the adapter holds them.
func fromParams(t testing.TB, m *cpuref.Model, p trainref.Params) (*Adapter, trainref.Params) {
	t.Helper()
	a, err := p.Adapter(m)
	if err != nil {
		t.Fatal(err)
	}
	rounded, err := trainref.ParamsFromAdapter(a)
	if err != nil {
		t.Fatal(err)
	}
	return a, rounded
}

func randomAdapter(t testing.TB, f *gguf.File, seed uint64) (*cpuref.Model, *Adapter, trainref.Params) {
	t.Helper()
	m, err := cpuref.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	p, err := trainref.NewLoRA(m, trainref.LoRAOptions{Rank: 4, Alpha: 8, Embedding: true, Norms: true, BScale: 0.05, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	// Trained norms and embeddings differ from the base's.
	for name, v := range p.Tensors {
		if !strings.HasSuffix(name, SuffixA) && !strings.HasSuffix(name, SuffixB) {
			for i := range v {
				v[i] += 0.05 * math.Sin(float64(i)+float64(seed))
			}
		}
	}
	a, rounded := fromParams(t, m, p)
	return m, a, rounded
}

func TestRoundTrip(t *testing.T) {
	f := model(t, tinySpec(ggml.F32))
	_, a, _ := randomAdapter(t, f, 1)
	var buf bytes.Buffer
	if err := Write(&buf, a); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{KeyType: TypeAdapter, KeyAdapter: AdapterLoRA, KeyArch: "llama"} {
		if got, _ := g.String(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if v, _ := g.Value(KeyAlpha); v != float32(8) {
		t.Errorf("%s = %#v, want float32(8)", KeyAlpha, v)
	}
	// llama.cpp's layout: A {in, rank}, B {rank, out}.
	if ti, _ := g.Tensor("blk.1.attn_k.weight.lora_a"); !slices.Equal(ti.Dims, []uint64{64, 4}) {
		t.Errorf("lora_a dims %v, want [64 4]", ti.Dims)
	}
	if ti, _ := g.Tensor("blk.1.attn_k.weight.lora_b"); !slices.Equal(ti.Dims, []uint64{4, 32}) {
		t.Errorf("lora_b dims %v, want [4 32]", ti.Dims)
	}
	back, err := Read(g)
	if err != nil {
		t.Fatal(err)
	}
	if back.Arch != a.Arch || back.Alpha != a.Alpha || len(back.Tensors) != len(a.Tensors) {
		t.Fatalf("read back %s alpha %v, %d tensors; wrote %s alpha %v, %d tensors",
			back.Arch, back.Alpha, len(back.Tensors), a.Arch, a.Alpha, len(a.Tensors))
	}
	for i, bt := range back.Tensors {
		at := a.Tensors[i]
		if bt.Name != at.Name || !slices.Equal(bt.Dims, at.Dims) || !slices.Equal(bt.Data, at.Data) {
			t.Errorf("tensor %d: read %s %v, wrote %s %v (or the data differ)", i, bt.Name, bt.Dims, at.Name, at.Dims)
		}
	}
	if err := back.Check(f); err != nil {
		t.Error(err)
	}
}

// An adapter whose B is zero and whose full tensors equal the base changes no tensor of the
// model, whatever its type; on F32 and F16 bases a non-zero update keeps the type.
func TestZeroAdapterIsIdentity(t *testing.T) {
	for _, wt := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0, ggml.Q4_0} {
		f := model(t, tinySpec(wt))
		m, err := cpuref.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := trainref.NewLoRA(m, trainref.LoRAOptions{Rank: 2, Alpha: 4, Norms: true, Embedding: true, Seed: 3})
		a, _ := fromParams(t, m, p)
		merged, notes, err := Merge(f, a, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(merged) != 0 || len(notes) != 0 {
			t.Errorf("%v: a zero adapter changed %d tensors (notes %q)", wt, len(merged), notes)
		}
		if wt != ggml.F32 && wt != ggml.F16 {
			continue
		}
		p, _ = trainref.NewLoRA(m, trainref.LoRAOptions{Rank: 2, Alpha: 4, BScale: 0.01, Seed: 3})
		a, _ = fromParams(t, m, p)
		merged, _, err = Merge(f, a, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(merged) != 4*2 {
			t.Errorf("%v: %d merged tensors, want 8", wt, len(merged))
		}
		for _, mt := range merged {
			info, _ := f.Tensor(mt.Name)
			data, _ := f.TensorData(info)
			if mt.Type != info.Type || bytes.Equal(mt.Data, data) {
				t.Errorf("%v: %s merged as %v (base %v), or unchanged", wt, mt.Name, mt.Type, info.Type)
			}
		}
	}
}

func logitsOf(t testing.TB, f *gguf.File, toks []int, spec kvcache.Spec) [][]float64 {
	t.Helper()
	m, err := cpuref.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	l, err := trainref.Logits(m, trainref.Params{}, toks, spec)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func maxDiff(a, b [][]float64) float64 {
	var d float64
	for i := range a {
		for j := range a[i] {
			d = math.Max(d, math.Abs(a[i][j]-b[i][j]))
		}
	}
	return d
}

// A random adapter's merged model (through Apply, and through WriteMerged and a reload) gives
// the logits of the base model with the adapter applied unmerged (trainref's LoRA path).
func TestMergedEqualsLoRA(t *testing.T) {
	f := model(t, tinySpec(ggml.F32))
	m, a, p := randomAdapter(t, f, 2)
	toks := []int{1, 40, 7, 99, 3, 250, 17, 64, 5, 5, 120, 33, 2, 8, 77, 200, 9, 10}
	spec := kvcache.Spec{Kind: kvcache.FreqKV, Size: 8, Sink: 2, Ratio: 0.5, Storage: engine.F32}
	want, err := trainref.Logits(m, p, toks, spec)
	if err != nil {
		t.Fatal(err)
	}
	base := logitsOf(t, f, toks, spec)
	applied, notes, err := Apply(f, a, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 0 {
		t.Errorf("an F32 merge has notes: %v", notes)
	}
	var buf bytes.Buffer
	if _, err := WriteMerged(&buf, f, a, 1); err != nil {
		t.Fatal(err)
	}
	written, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// Merged weights are rounded to float32: relative 6e-8 of weights O(1).
	for name, g := range map[string]*gguf.File{"Apply": applied, "WriteMerged": written} {
		got := logitsOf(t, g, toks, spec)
		d, moved := maxDiff(got, want), maxDiff(base, want)
		t.Logf("%s: merged vs LoRA logits max |diff| %.2e (the adapter moves them by %.2e)", name, d, moved)
		if d > 1e-5 || moved < 1e-2 {
			t.Errorf("%s: merged logits differ from LoRA's by %.3g (want < 1e-5), LoRA from base by %.3g (want > 1e-2)", name, d, moved)
		}
	}
	// Scale 0 is the base.
	zero, _, err := Apply(model(t, tinySpec(ggml.F32)), a, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(logitsOf(t, zero, toks, spec), base); d != 0 {
		t.Errorf("scale 0 changed the logits by %g", d)
	}
}

// A quantised base is merged into F16 matrices, with a note saying so and what it costs.
func TestQuantisedBaseMergesToF16(t *testing.T) {
	f := model(t, tinySpec(ggml.Q8_0))
	_, a, _ := randomAdapter(t, f, 3)
	merged, notes, err := Merge(f, a, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range merged {
		if strings.Contains(mt.Name, "attn_") && !strings.Contains(mt.Name, "norm") && mt.Type != ggml.F16 {
			t.Errorf("%s merged as %v, want F16", mt.Name, mt.Type)
		}
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "Q8_0") || !strings.Contains(notes[1], "iB more") {
		t.Errorf("notes %q", notes)
	}
	t.Log(notes)
	if _, _, err := Apply(f, a, 1); err != nil {
		t.Fatal(err)
	}
}

// An adapter made for another model is refused with one line naming the first tensor that
// does not fit.
func TestMismatchedAdapter(t *testing.T) {
	f := model(t, tinySpec(ggml.F32))
	_, a, _ := randomAdapter(t, f, 4)
	other := tinySpec(ggml.F32)
	other.KVHeads = 4 // attn_k and attn_v grow
	wider := tinySpec(ggml.F32)
	wider.Dim, wider.FFN = 48, 80
	deeper := tinySpec(ggml.F32)
	deeper.Layers = 1
	qwen := tinySpec(ggml.F32)
	qwen.Arch = "qwen2"
	for name, c := range map[string]struct {
		spec synth.Spec
		want string
	}{
		"kv heads": {other, "blk.0.attn_k.weight.lora_a"},
		"width":    {wider, "blk.0.attn_k.weight.lora_a"},
		"layers":   {deeper, "blk.1.attn_k.weight.lora_a"},
		"arch":     {qwen, `architecture "llama", the model is "qwen2"`},
	} {
		_, _, err := Apply(model(t, c.spec), a, 1)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q does not name %q on one line", name, msg, c.want)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestBadAdapters(t *testing.T) {
	f := model(t, tinySpec(ggml.F32))
	_, good, _ := randomAdapter(t, f, 5)
	for name, edit := range map[string]func(a *Adapter){
		"lone a": func(a *Adapter) {
			a.Tensors = slices.DeleteFunc(a.Tensors, func(t Tensor) bool { return t.Name == "blk.0.attn_q.weight.lora_b" })
		},
		"rank":        func(a *Adapter) { a.Tensors[0].Dims = []uint64{a.Tensors[0].Dims[0] / 2, a.Tensors[0].Dims[1] * 2} },
		"data length": func(a *Adapter) { a.Tensors[1].Data = a.Tensors[1].Data[1:] },
		"unknown": func(a *Adapter) {
			a.Tensors = append(a.Tensors, Tensor{Name: "blk.0.attn_gate.weight", Dims: []uint64{1}, Data: []float32{1}})
		},
		"duplicate": func(a *Adapter) { a.Tensors = append(a.Tensors, a.Tensors[0]) },
	} {
		a := *good
		a.Tensors = slices.Clone(good.Tensors)
		edit(&a)
		if _, _, err := Merge(f, &a, 1); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// A model is not an adapter.
	if _, err := Read(f); err == nil || !strings.Contains(err.Error(), "not an adapter") {
		t.Errorf("reading a model as an adapter: %v", err)
	}
	if _, _, err := Merge(f, good, math.NaN()); err == nil {
		t.Error("NaN scale: no error")
	}
}
