package trainref

import (
	"bytes"
	"fmt"
	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
	"math"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/model/cpuref"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/synth"
)

// Tiny models: GQA with odd sizes (llama, adjacent RoPE), and qwen2 (NeoX RoPE, Q/K/V
// biases, output tied to the embedding).
func models() map[string]synth.Spec {
	return map[string]synth.Spec{
		"llama-gqa-odd": {Arch: "llama", Dim: 12, Layers: 2, Heads: 3, KVHeads: 1, FFN: 10, Vocab: 260,
			Context: 64, WeightType: ggml.F32, RopeBase: 10000, Seed: 5},
		"qwen2-tied": {Arch: "qwen2", Dim: 8, Layers: 2, Heads: 2, KVHeads: 1, FFN: 6, Vocab: 260,
			Context: 64, WeightType: ggml.F32, Tied: true, RopeBase: 1e6, Seed: 6},
	}
}

func load(t testing.TB, s synth.Spec) *cpuref.Model {
	t.Helper()
	var buf bytes.Buffer
	if err := synth.WriteTo(&buf, s); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	m, err := cpuref.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func tokens(n, vocab int, seed uint64) []int {
	rng := mrand.New(mrand.NewPCG(seed, 1))
	out := make([]int, n)
	for i := range out {
		out[i] = rng.IntN(vocab)
	}
	return out
}

// The freqkv geometry of the tests: N = 12, S = 2, R = 1, g = 0.5, so L = 9 and m = 4 (not
// powers of two), a compression every 5 tokens after the first 12: 30 tokens (29 read) give
// 4 compressions, and the first rows after the sinks are compressed 4 times over.
var testCache = freqkv.Config{CacheSize: 12, Sink: 2, Recent: 1, Ratio: 0.5}

func specs() map[string]kvcache.Spec {
	return map[string]kvcache.Spec{
		"full":   {Kind: kvcache.Full, Size: seqLen, Storage: engine.F32},
		"window": {Kind: kvcache.Window, Size: 9, Sink: 2, Storage: engine.F32},
		"freqkv": {Kind: kvcache.FreqKV, Size: testCache.CacheSize, Sink: testCache.Sink, Recent: testCache.Recent, Ratio: testCache.Ratio, Storage: engine.F32},
	}
}

const seqLen = 30

func TestCompressionsInTheLoop(t *testing.T) {
	steps, err := testCache.Plan(0, seqLen-1)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range steps {
		if s.Kind == freqkv.StepCompress {
			n++
		}
	}
	if n < 3 {
		t.Fatalf("%d compressions over %d tokens, want 3 or more: %v", n, seqLen-1, steps)
	}
}

// With no trainable tensors the training forward is cpuref's forward, for every policy.
func TestLogitsEqualCPURef(t *testing.T) {
	for mname, ms := range models() {
		m := load(t, ms)
		toks := tokens(seqLen, ms.Vocab, 1)
		for sname, spec := range specs() {
			s, err := m.NewSession(spec)
			if err != nil {
				t.Fatal(err)
			}
			want, err := s.ForwardGroup(toks)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Logits(m, Params{}, toks, spec)
			if err != nil {
				t.Fatal(err)
			}
			var worst float64
			for i := range want {
				for j := range want[i] {
					worst = math.Max(worst, math.Abs(got[i][j]-want[i][j]))
				}
			}
			if worst > 1e-11 {
				t.Errorf("%s/%s: logits differ from cpuref by %.3g", mname, sname, worst)
			}
		}
	}
}

// The compression's backward is its adjoint: <C x, dy> = <x, Cᵀ dy>, and C is FreqKV's.
func TestCompressAdjoint(t *testing.T) {
	for _, c := range []struct{ L, m, ch int }{{9, 4, 3}, {8, 4, 2}, {16, 8, 1}, {7, 3, 2}} {
		rng := mrand.New(mrand.NewPCG(uint64(c.L), 2))
		tp := &tape{}
		rows := make([]*node, c.L)
		flat := make([]float64, 0, c.L*c.ch)
		for i := range rows {
			v := make([]float64, c.ch)
			for j := range v {
				v[j] = rng.NormFloat64()
			}
			rows[i] = tp.value(v)
			flat = append(flat, v...)
		}
		out := tp.compress(rows, c.m)
		want, err := freqkv.Compress(flat, c.L, c.ch, c.m)
		if err != nil {
			t.Fatal(err)
		}
		var lhs float64
		for i, o := range out {
			for j := range o.v {
				if d := math.Abs(o.v[j] - want[i*c.ch+j]); d > 1e-12 {
					t.Fatalf("L=%d m=%d: compress differs from freqkv.Compress by %g", c.L, c.m, d)
				}
				o.g[j] = rng.NormFloat64()
				lhs += o.v[j] * o.g[j]
			}
		}
		tp.backward()
		var rhs float64
		for _, r := range rows {
			for j := range r.v {
				rhs += r.v[j] * r.g[j]
			}
		}
		if math.Abs(lhs-rhs) > 1e-12*math.Max(1, math.Abs(lhs)) {
			t.Errorf("L=%d m=%d: <Cx,dy> = %.15g, <x,Cᵀdy> = %.15g", c.L, c.m, lhs, rhs)
		}
	}
}

// fdCheck compares the gradient of every trainable tensor, at a handful of coordinates, with
// central finite differences of the loss, and returns the worst relative error.
func fdCheck(t *testing.T, label string, m *cpuref.Model, p Params, toks []int, spec kvcache.Spec, pick map[string][]int) float64 {
	t.Helper()
	loss, grads, err := LossAndGrads(m, p, toks, spec)
	if err != nil {
		t.Fatal(err)
	}
	if l2, err := Loss(m, p, toks, spec); err != nil || l2 != loss {
		t.Fatalf("%s: Loss %v (%v) differs from LossAndGrads' %v", label, l2, err, loss)
	}
	names := make([]string, 0, len(p.Tensors))
	for n := range p.Tensors {
		names = append(names, n)
		if len(grads[n]) != len(p.Tensors[n]) {
			t.Fatalf("%s: gradient of %s has %d values, the tensor %d", label, n, len(grads[n]), len(p.Tensors[n]))
		}
	}
	sort.Strings(names)
	rng := mrand.New(mrand.NewPCG(7, 7))
	const h = 1e-5
	var worst, worstAbs float64
	nonzero, checked := 0, 0
	for _, name := range names {
		x := p.Tensors[name]
		coords := pick[name]
		for range 4 {
			coords = append(coords, rng.IntN(len(x)))
		}
		for _, i := range coords {
			orig := x[i]
			x[i] = orig + h
			lp, err := Loss(m, p, toks, spec)
			if err != nil {
				t.Fatal(err)
			}
			x[i] = orig - h
			lm, _ := Loss(m, p, toks, spec)
			x[i] = orig
			fd := (lp - lm) / (2 * h)
			g := grads[name][i]
			err2 := math.Abs(fd - g)
			if err2 > 1e-8+1e-5*math.Abs(g) {
				t.Errorf("%s: d loss / d %s[%d]: gradient %.10g, finite difference %.10g", label, name, i, g, fd)
			}
			worstAbs = math.Max(worstAbs, err2)
			if g != 0 {
				nonzero++
				worst = math.Max(worst, err2/math.Abs(g))
			}
			checked++
		}
	}
	if nonzero < checked*3/4 {
		t.Errorf("%s: only %d of %d checked gradient coordinates are non-zero; the check is weak", label, nonzero, checked)
	}
	t.Logf("%s: loss %.6f; %d coordinates of %d tensors: worst |fd - grad| %.2e, worst relative %.2e",
		label, loss, checked, len(names), worstAbs, worst)
	return worst
}

// The reference's gradients equal central finite differences of its loss, for LoRA on q, k,
// v, o with embeddings and norms (the paper's recipe), under each cache policy.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	for _, mname := range []string{"llama-gqa-odd", "qwen2-tied"} {
		ms := models()[mname]
		m := load(t, ms)
		toks := tokens(seqLen, ms.Vocab, 3)
		for _, sname := range []string{"full", "window", "freqkv"} {
			p, err := NewLoRA(m, LoRAOptions{Rank: 2, Alpha: 3, Embedding: true, Norms: true, BScale: 0.3, Seed: 9})
			if err != nil {
				t.Fatal(err)
			}
			// Embedding rows of the first tokens after the sinks: their keys and values are
			// compressed again and again under freqkv.
			pick := map[string][]int{"token_embd.weight": {toks[2]*ms.Dim + 1, toks[3]*ms.Dim + ms.Dim - 1}}
			fdCheck(t, mname+"/"+sname, m, p, toks, specs()[sname], pick)
		}
	}
}

// Full fine-tuning (every matrix and bias trainable) and LoRA on the feed-forward matrices.
func TestGradientsAllMatrices(t *testing.T) {
	ms := models()["qwen2-tied"]
	m := load(t, ms)
	toks := tokens(seqLen, ms.Vocab, 4)
	p, err := NewLoRA(m, LoRAOptions{Rank: 1, Alpha: 2, Matrices: []string{"ffn_gate", "ffn_up", "ffn_down"}, BScale: 0.5, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range baseTensors(m) {
		if name == "blk.1.attn_k.weight" || name == "blk.0.attn_v.bias" || name == "output_norm.weight" {
			p.Tensors[name] = append([]float64(nil), n.v...)
		}
	}
	fdCheck(t, "qwen2-tied/freqkv/ffn-lora+full-tensors", m, p, toks, specs()["freqkv"], nil)

	// An untied classifier and the output projections, trained whole.
	ms = models()["llama-gqa-odd"]
	m = load(t, ms)
	p = Params{Tensors: map[string][]float64{}}
	for name, n := range baseTensors(m) {
		if name == "output.weight" || name == "blk.0.ffn_down.weight" || name == "blk.1.attn_output.weight" {
			p.Tensors[name] = append([]float64(nil), n.v...)
		}
	}
	fdCheck(t, "llama-gqa-odd/window/full-tensors", m, p, tokens(seqLen, ms.Vocab, 8), specs()["window"], nil)
}

// LoRA with a zero B is the base model; a LoRA update equals the merged matrix W + (α/r)·B·A.
func TestLoRAIsMergedMatrix(t *testing.T) {
	ms := models()["llama-gqa-odd"]
	m := load(t, ms)
	toks := tokens(20, ms.Vocab, 5)
	spec := specs()["freqkv"]
	base, err := Logits(m, Params{}, toks, spec)
	if err != nil {
		t.Fatal(err)
	}
	zero, _ := NewLoRA(m, LoRAOptions{Rank: 3, Alpha: 6, Seed: 1})
	got, err := Logits(m, zero, toks, spec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range base {
		if !slices.Equal(base[i], got[i]) {
			t.Fatalf("token %d: a zero-B adapter changed the logits", i)
		}
	}
	p, _ := NewLoRA(m, LoRAOptions{Rank: 3, Alpha: 6, BScale: 0.2, Seed: 1})
	lora, err := Logits(m, p, toks, spec)
	if err != nil {
		t.Fatal(err)
	}
	merged := *m
	merged.Layers = slices.Clone(m.Layers)
	for l := range merged.Layers {
		w := &merged.Layers[l]
		for _, mat := range []struct {
			name string
			w    *[]float64
		}{{"attn_q", &w.WQ}, {"attn_k", &w.WK}, {"attn_v", &w.WV}, {"attn_output", &w.WO}} {
			name := fmt.Sprintf("blk.%d.%s.weight", l, mat.name)
			a, b := p.Tensors[name+".lora_a"], p.Tensors[name+".lora_b"]
			in := len(a) / 3
			out := len(b) / 3
			nw := slices.Clone(*mat.w)
			for i := range out {
				for j := range in {
					var s float64
					for k := range 3 {
						s += b[i*3+k] * a[k*in+j]
					}
					nw[i*in+j] += 2 * s
				}
			}
			*mat.w = nw
		}
	}
	want, err := Logits(&merged, Params{}, toks, spec)
	if err != nil {
		t.Fatal(err)
	}
	var worst, spread float64
	for i := range want {
		for j := range want[i] {
			worst = math.Max(worst, math.Abs(lora[i][j]-want[i][j]))
			spread = math.Max(spread, math.Abs(lora[i][j]-base[i][j]))
		}
	}
	if worst > 1e-11 || spread < 1e-3 {
		t.Errorf("LoRA vs merged: max difference %.3g (want < 1e-11); LoRA vs base %.3g (want a visible change)", worst, spread)
	}
}

func TestErrors(t *testing.T) {
	ms := models()["qwen2-tied"]
	m := load(t, ms)
	toks := tokens(10, ms.Vocab, 1)
	full := kvcache.Spec{Kind: kvcache.Full, Size: 64}
	for _, c := range []struct {
		name string
		p    Params
		toks []int
		spec kvcache.Spec
	}{
		{"policy", Params{}, toks, kvcache.Spec{Kind: 99, Size: 4}},
		{"freqkv geometry", Params{}, toks, kvcache.Spec{Kind: kvcache.FreqKV, Size: 4, Sink: 4, Ratio: 0.5}},
		{"window sinks", Params{}, toks, kvcache.Spec{Kind: kvcache.Window, Size: 4, Sink: 4}},
		{"one token", Params{}, toks[:1], full},
		{"token range", Params{}, []int{1, ms.Vocab}, full},
		{"unknown tensor", Params{Tensors: map[string][]float64{"blk.9.attn_q.weight": {1}}}, toks, full},
		{"wrong length", Params{Tensors: map[string][]float64{"output_norm.weight": {1}}}, toks, full},
		{"tied output", Params{Tensors: map[string][]float64{"output.weight": make([]float64, ms.Vocab*ms.Dim)}}, toks, full},
		{"lone a", Params{Alpha: 1, Tensors: map[string][]float64{"blk.0.attn_q.weight.lora_a": make([]float64, ms.Dim)}}, toks, full},
		{"lone b", Params{Alpha: 1, Tensors: map[string][]float64{"blk.0.attn_q.weight.lora_b": make([]float64, ms.Dim)}}, toks, full},
		{"bad b", Params{Alpha: 1, Tensors: map[string][]float64{"blk.0.attn_q.weight.lora_a": make([]float64, ms.Dim),
			"blk.0.attn_q.weight.lora_b": make([]float64, ms.Dim+1)}}, toks, full},
		{"zero alpha", Params{Tensors: map[string][]float64{"blk.0.attn_q.weight.lora_a": make([]float64, ms.Dim),
			"blk.0.attn_q.weight.lora_b": make([]float64, ms.Dim)}}, toks, full},
		{"lora on a norm", Params{Alpha: 1, Tensors: map[string][]float64{"blk.0.attn_norm.weight.lora_a": make([]float64, ms.Dim),
			"blk.0.attn_norm.weight.lora_b": make([]float64, 1)}}, toks, full},
	} {
		if _, _, err := LossAndGrads(m, c.p, c.toks, c.spec); err == nil {
			t.Errorf("%s: no error", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}
