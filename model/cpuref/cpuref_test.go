package cpuref

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/freqkv"
	"github.com/freqkv/freqkv/internal/shareddata"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/model/ggml"
	"github.com/freqkv/freqkv/model/gguf"
	"github.com/freqkv/freqkv/model/synth"
)

func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// Greedy decoding of the real stories260K from BOS with a full cache gives llama2.c's tokens:
// this validates the reference itself.
func TestStories260KGreedyMatchesLlama2c(t *testing.T) {
	f, err := gguf.Open(shareddata.Path(t, "models/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(shareddata.Path(t, "models/stories260K.greedy256.tokens"))
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, field := range strings.Fields(string(text)) {
		id, err := strconv.Atoi(field)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	if len(want) != 256 {
		t.Fatalf("%d expected tokens, want 256", len(want))
	}

	s, err := m.NewSession(fullSpec(m))
	if err != nil {
		t.Fatal(err)
	}
	token := 1 // BOS
	for i, w := range want {
		logits, err := s.Forward(token)
		if err != nil {
			t.Fatal(err)
		}
		token = argmax(logits)
		if token != w {
			t.Fatalf("token %d: got %d, llama2.c %d (matched %v)", i, token, w, want[:i])
		}
	}
}

// synthetic models covering GQA, multi-query, odd head counts, qwen2 biases and NeoX RoPE, a
// tied classifier and quantised weights.
func synthetic() map[string]synth.Spec {
	return map[string]synth.Spec{
		"llama-gqa": synth.Tiny(),
		"llama-mqa-odd": {Arch: "llama", Dim: 36, Layers: 2, Heads: 3, KVHeads: 1, FFN: 50, Vocab: 270,
			Context: 128, WeightType: ggml.F32, RopeBase: 10000, Seed: 2},
		"qwen2-bias-tied": {Arch: "qwen2", Dim: 48, Layers: 2, Heads: 6, KVHeads: 2, FFN: 80, Vocab: 280,
			Context: 128, WeightType: ggml.F32, Tied: true, RopeBase: 1e6, Seed: 3},
		"llama-q8": {Arch: "llama", Dim: 64, Layers: 2, Heads: 4, KVHeads: 4, FFN: 96, Vocab: 300,
			Context: 128, WeightType: ggml.Q8_0, RopeBase: 10000, Seed: 4},
	}
}

func loadSynth(t testing.TB, s synth.Spec) *Model {
	t.Helper()
	var buf bytes.Buffer
	if err := synth.WriteTo(&buf, s); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func randomTokens(n, vocab int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 0))
	out := make([]int, n)
	for i := range out {
		out[i] = rng.IntN(vocab)
	}
	return out
}

// fullSpec is a full cache of the model's trained context.
func fullSpec(m *Model) kvcache.Spec {
	return kvcache.Spec{Kind: kvcache.Full, Size: m.HP.ContextLength, Storage: engine.F32}
}

func newSession(t testing.TB, m *Model, spec kvcache.Spec) *Session {
	t.Helper()
	s, err := m.NewSession(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tokenByToken runs tokens one Forward at a time.
func tokenByToken(t testing.TB, s *Session, tokens []int) [][]float64 {
	t.Helper()
	out := make([][]float64, len(tokens))
	for i, tok := range tokens {
		logits, err := s.Forward(tok)
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		out[i] = logits
	}
	return out
}

// grouped runs tokens in groups of the given sizes, cycling through them.
func grouped(t testing.TB, s *Session, tokens []int, sizes ...int) [][]float64 {
	t.Helper()
	var out [][]float64
	for i, next := 0, 0; next < len(tokens); i++ {
		n := min(sizes[i%len(sizes)], len(tokens)-next)
		logits, err := s.ForwardGroup(tokens[next : next+n])
		if err != nil {
			t.Fatalf("group at token %d: %v", next, err)
		}
		out = append(out, logits...)
		next += n
	}
	return out
}

// maxDiff is the largest |a-b| over all logits, relative to the largest |a|.
func maxDiff(t testing.TB, a, b [][]float64) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d against %d rows of logits", len(a), len(b))
	}
	var diff, scale float64
	for i := range a {
		if len(a[i]) != len(b[i]) {
			t.Fatalf("row %d: %d against %d logits", i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			diff = math.Max(diff, math.Abs(a[i][j]-b[i][j]))
			scale = math.Max(scale, math.Abs(a[i][j]))
		}
	}
	return diff / scale
}

// Logits that differ from run to run would make every comparison vacuous: check that the
// synthetic models give spread, distinct logits for distinct contexts.
func TestSyntheticLogitsAreInformative(t *testing.T) {
	for name, spec := range synthetic() {
		t.Run(name, func(t *testing.T) {
			m := loadSynth(t, spec)
			logits := tokenByToken(t, newSession(t, m, fullSpec(m)), randomTokens(20, spec.Vocab, 1))
			for i, l := range logits {
				var sum, sq float64
				for _, v := range l {
					sum += v
					sq += v * v
				}
				n := float64(len(l))
				std := math.Sqrt(sq/n - sum*sum/n/n)
				if std < 0.2 || std > 5 || math.IsNaN(std) {
					t.Errorf("token %d: logits have standard deviation %g, want O(1)", i, std)
				}
			}
			if d := maxDiff(t, logits[:10], logits[10:]); d < 0.1 {
				t.Errorf("logits of different tokens differ by only %g", d)
			}
		})
	}
}

const tolerance = 1e-12

// Under every policy, any grouping of the tokens gives the token-by-token logits, through
// several compressions and window slides.
func TestGroupedEqualsTokenByToken(t *testing.T) {
	policies := []kvcache.Spec{
		{Kind: kvcache.Full, Size: 128, Storage: engine.F32}, // the synthetic models' trained context
		{Kind: kvcache.Window, Size: 16, Sink: 3, Storage: engine.F32},
		{Kind: kvcache.Window, Size: 9, Sink: 0, Storage: engine.F32},
		{Kind: kvcache.FreqKV, Size: 24, Sink: 2, Recent: 3, Ratio: 0.5, Storage: engine.F32}, // L 19, m 9
		{Kind: kvcache.FreqKV, Size: 20, Sink: 4, Recent: 0, Ratio: 0.5, Storage: engine.F32}, // L 16, m 8
		{Kind: kvcache.FreqKV, Size: 13, Sink: 0, Recent: 1, Ratio: 0.3, Storage: engine.F32}, // L 12, m 3
	}
	for name, spec := range synthetic() {
		m := loadSynth(t, spec)
		tokens := randomTokens(70, spec.Vocab, 2)
		for _, p := range policies {
			t.Run(name+"/"+p.Kind.String()+"/"+strconv.Itoa(p.Size), func(t *testing.T) {
				ref := newSession(t, m, p)
				want := tokenByToken(t, ref, tokens)
				for _, sizes := range [][]int{{len(tokens)}, {5, 17, 1, 30}, {p.Size + 1}, {2}} {
					s := newSession(t, m, p)
					got := grouped(t, s, tokens, sizes...)
					if d := maxDiff(t, want, got); d > tolerance {
						t.Errorf("groups of %v: logits differ from token by token by %g", sizes, d)
					}
					for layer := range m.Layers {
						sameRows(t, ref, s, layer)
					}
				}
			})
		}
	}
}

// sameRows checks that two sessions' caches hold the same rows at layer.
func sameRows(t *testing.T, a, b *Session, layer int) {
	t.Helper()
	ak, av, err := a.Rows(layer)
	if err != nil {
		t.Fatal(err)
	}
	bk, bv, err := b.Rows(layer)
	if err != nil {
		t.Fatal(err)
	}
	if len(ak) != len(bk) || len(av) != len(bv) {
		t.Fatalf("layer %d: caches of %d and %d rows", layer, len(ak), len(bk))
	}
	if d := math.Max(maxDiff(t, ak, bk), maxDiff(t, av, bv)); d > tolerance {
		t.Errorf("layer %d: cache rows differ by %g", layer, d)
	}
}

// With a cache larger than the sequence, window and freqkv never slide nor compress: they are
// the full cache.
func TestLargeCachesEqualFull(t *testing.T) {
	for name, spec := range synthetic() {
		t.Run(name, func(t *testing.T) {
			m := loadSynth(t, spec)
			tokens := randomTokens(40, spec.Vocab, 3)
			want := tokenByToken(t, newSession(t, m, fullSpec(m)), tokens)
			for _, p := range []kvcache.Spec{
				{Kind: kvcache.FreqKV, Size: 1000, Sink: 4, Ratio: 0.5, Storage: engine.F32},
				{Kind: kvcache.FreqKV, Size: len(tokens), Sink: 0, Recent: 7, Ratio: 0.25, Storage: engine.F32},
				{Kind: kvcache.Window, Size: 1000, Sink: 4, Storage: engine.F32},
				{Kind: kvcache.Window, Size: len(tokens), Sink: 0, Storage: engine.F32},
			} {
				got := grouped(t, newSession(t, m, p), tokens, 7)
				if d := maxDiff(t, want, got); d > tolerance {
					t.Errorf("%+v: logits differ from the full cache by %g", p, d)
				}
			}
		})
	}
}

// oneLayer returns spec with a single layer: its keys and values depend on the token alone.
func oneLayer(spec synth.Spec) synth.Spec {
	spec.Layers = 1
	return spec
}

// In a one-layer model the window's positions can be checked from outside: the query at row r
// gives the logits of a fresh full-cache run over the tokens it sees (sinks, then rows lo..r),
// whose rows take exactly the positions 0, 1, ... the window gives them.
func TestWindowPositions(t *testing.T) {
	for name, spec := range synthetic() {
		t.Run(name, func(t *testing.T) {
			m := loadSynth(t, oneLayer(spec))
			tokens := randomTokens(30, spec.Vocab, 4)
			for _, cfg := range [][2]int{{8, 3}, {5, 0}, {6, 5}} {
				n, sink := cfg[0], cfg[1]
				window := tokenByToken(t, newSession(t, m, kvcache.Spec{Kind: kvcache.Window, Size: n, Sink: sink, Storage: engine.F32}), tokens)
				for r := range tokens {
					seen := append([]int(nil), tokens[:min(sink, r+1)]...)
					if r >= sink {
						lo := max(sink, r-(n-sink)+1)
						seen = append(seen, tokens[lo:r+1]...)
					}
					full := tokenByToken(t, newSession(t, m, fullSpec(m)), seen)
					if d := maxDiff(t, window[r:r+1], full[len(full)-1:]); d > tolerance {
						t.Fatalf("window %+v, row %d: logits differ from a full run over %v by %g", cfg, r, seen, d)
					}
				}
			}
		})
	}
}

// In a one-layer model, a freqkv session's logits can be rebuilt from its cache rows with the
// freqkv package's own RoPE and attention (freqkv.RefAttention): the token is the cache's last
// row and its query has that row's position, through every compression.
func TestFreqKVAgreesWithRefAttention(t *testing.T) {
	for name, spec := range synthetic() {
		t.Run(name, func(t *testing.T) {
			m := loadSynth(t, oneLayer(spec))
			hp, w := m.HP, m.Layers[0]
			params := freqkv.AttentionParams{Heads: hp.Heads, KVHeads: hp.KVHeads, HeadDim: hp.HeadDim(),
				RopeBase: hp.RopeBase, NeoX: hp.RopeNeoX}
			cfg := kvcache.Spec{Kind: kvcache.FreqKV, Size: 12, Sink: 2, Recent: 2, Ratio: 0.5, Storage: engine.F32}
			s := newSession(t, m, cfg)
			for i, tok := range randomTokens(40, spec.Vocab, 5) {
				got, err := s.Forward(tok)
				if err != nil {
					t.Fatal(err)
				}
				keys, values, err := s.Rows(0)
				if err != nil {
					t.Fatal(err)
				}
				x := append([]float64(nil), m.TokenEmbedding[tok*hp.Dim:(tok+1)*hp.Dim]...)
				q := matmul(w.WQ, rmsnorm(x, w.AttnNorm, hp.RMSEps), w.BQ)
				att, err := freqkv.RefAttention(q, keys, values, len(keys)-1, params)
				if err != nil {
					t.Fatal(err)
				}
				add(x, matmul(w.WO, att, nil))
				xb := rmsnorm(x, w.FFNNorm, hp.RMSEps)
				add(x, matmul(w.WDown, swiglu(matmul(w.WGate, xb, nil), matmul(w.WUp, xb, nil)), nil))
				want := matmul(m.Output, rmsnorm(x, m.OutputNorm, hp.RMSEps), nil)
				if d := maxDiff(t, [][]float64{want}, [][]float64{got}); d > 1e-10 {
					t.Fatalf("token %d (cache of %d rows): logits differ from RefAttention's by %g", i, len(keys), d)
				}
			}
		})
	}
}

// NeoX RoPE on (x[i], x[i+d/2]) is adjacent-pair RoPE on Q and K rows permuted within each
// head (what llama.cpp's converter does to HF LLaMA weights): qwen2's path checked by llama's.
func TestNeoXIsPermutedAdjacent(t *testing.T) {
	spec := synthetic()["qwen2-bias-tied"]
	neox := loadSynth(t, spec)
	adjacent := *neox
	adjacent.HP.RopeNeoX = false
	hd := neox.HP.HeadDim()
	permute := func(x []float64, rowLen int) []float64 {
		out := make([]float64, len(x))
		for head := 0; head < len(x)/rowLen; head += hd {
			for i := range hd / 2 {
				copy(out[(head+2*i)*rowLen:(head+2*i+1)*rowLen], x[(head+i)*rowLen:(head+i+1)*rowLen])
				copy(out[(head+2*i+1)*rowLen:(head+2*i+2)*rowLen], x[(head+i+hd/2)*rowLen:(head+i+hd/2+1)*rowLen])
			}
		}
		return out
	}
	adjacent.Layers = make([]Layer, len(neox.Layers))
	for l, w := range neox.Layers {
		w.WQ, w.WK = permute(w.WQ, neox.HP.Dim), permute(w.WK, neox.HP.Dim)
		w.BQ, w.BK = permute(w.BQ, 1), permute(w.BK, 1)
		adjacent.Layers[l] = w
	}
	tokens := randomTokens(30, spec.Vocab, 6)
	want := tokenByToken(t, newSession(t, neox, fullSpec(neox)), tokens)
	got := tokenByToken(t, newSession(t, &adjacent, fullSpec(&adjacent)), tokens)
	if d := maxDiff(t, want, got); d > 1e-10 {
		t.Errorf("NeoX model and permuted adjacent-pair model differ by %g", d)
	}
	// and the biases matter: without them the logits change
	unbiased := *neox
	unbiased.Layers = make([]Layer, len(neox.Layers))
	for l, w := range neox.Layers {
		w.BQ, w.BK, w.BV = nil, nil, nil
		unbiased.Layers[l] = w
	}
	if d := maxDiff(t, want, tokenByToken(t, newSession(t, &unbiased, fullSpec(&unbiased)), tokens)); d < 1e-3 {
		t.Errorf("removing qwen2's biases changes the logits by only %g", d)
	}
}

// rope agrees with freqkv.Rope, an independent implementation, on whole and partial rotary
// dimensions, and linear scaling divides positions.
func TestRope(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, neox := range []bool{false, true} {
		for _, c := range []struct{ headDim, dim int }{{8, 8}, {16, 16}, {12, 8}, {64, 32}} {
			x := make([]float64, 3*c.headDim)
			for i := range x {
				x[i] = rng.NormFloat64()
			}
			for _, pos := range []int{0, 1, 5, 1000} {
				p := ropeParams{headDim: c.headDim, dim: c.dim, base: 10000, scale: 1, neox: neox}
				got := rope(x, pos, p)
				for head := 0; head < len(x); head += c.headDim {
					want := append([]float64(nil), x[head:head+c.dim]...)
					if err := freqkv.Rope(want, pos, c.dim, 10000, neox); err != nil {
						t.Fatal(err)
					}
					want = append(want, x[head+c.dim:head+c.headDim]...)
					if d := maxDiff(t, [][]float64{want}, [][]float64{got[head : head+c.headDim]}); d > 1e-12 {
						t.Errorf("neox %v, head %d, rope dim %d, pos %d: differs from freqkv.Rope by %g",
							neox, c.headDim, c.dim, pos, d)
					}
				}
				p.scale = 4
				want := rope(x, pos, ropeParams{headDim: c.headDim, dim: c.dim, base: 10000, scale: 1, neox: neox})
				if d := maxDiff(t, [][]float64{want}, [][]float64{rope(x, 4*pos, p)}); d > 1e-9 {
					t.Errorf("linear scale 4 at position %d is not position %d: %g", 4*pos, pos, d)
				}
			}
		}
	}
}

// A real GGUF with F16 weights and a 32000-token vocabulary loads and runs.
func TestLlamaTinyRandomRuns(t *testing.T) {
	f, err := gguf.Open(shareddata.Path(t, "models/llama-2-tiny-random.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, m, kvcache.Spec{Kind: kvcache.FreqKV, Size: 8, Sink: 1, Ratio: 0.5, Storage: engine.F32})
	for i, tok := range randomTokens(20, m.HP.Vocab, 8) {
		logits, err := s.Forward(tok)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range logits {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("token %d: logit %g", i, v)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	spec := synth.Tiny()
	m := loadSynth(t, spec)
	for _, c := range []kvcache.Spec{
		{Kind: kvcache.Kind(99), Size: 8, Storage: engine.F32},
		{Kind: kvcache.Full, Size: -1, Storage: engine.F32}, {Kind: kvcache.Full, Size: 0, Storage: engine.F32}, {Kind: kvcache.Full, Size: 8, Sink: 2, Storage: engine.F32},
		{Kind: kvcache.Window, Size: 4, Sink: 4, Storage: engine.F32},
		{Kind: kvcache.Window, Size: 0, Storage: engine.F32},
		{Kind: kvcache.Window, Size: 4, Sink: -1, Storage: engine.F32},
		{Kind: kvcache.FreqKV, Size: 8, Sink: 2, Ratio: 1, Storage: engine.F32},
		{Kind: kvcache.FreqKV, Size: 4, Sink: 2, Recent: 2, Ratio: 0.5, Storage: engine.F32},
	} {
		if _, err := m.NewSession(c); err == nil {
			t.Errorf("NewSession(%+v): no error", c)
		}
	}

	// A rejected call leaves the session as it was.
	tokens := randomTokens(6, spec.Vocab, 9)
	want := tokenByToken(t, newSession(t, m, kvcache.Spec{Kind: kvcache.Full, Size: 6, Storage: engine.F32}), tokens)
	s := newSession(t, m, kvcache.Spec{Kind: kvcache.Full, Size: 6, Storage: engine.F32})
	got := grouped(t, s, tokens[:2], 2)
	for _, bad := range [][]int{{-1}, {spec.Vocab}, {tokens[2], spec.Vocab + 5}, randomTokens(5, spec.Vocab, 10)} {
		if _, err := s.ForwardGroup(bad); err == nil {
			t.Errorf("ForwardGroup(%v) after 2 tokens: no error", bad)
		}
	}
	got = append(got, grouped(t, s, tokens[2:], 4)...)
	if d := maxDiff(t, want, got); d > tolerance {
		t.Errorf("after rejected calls, logits differ by %g", d)
	}
	if _, err := s.Forward(tokens[0]); !errors.Is(err, kvcache.ErrContextFull) {
		t.Errorf("token 7 in a full cache of 6: %v, want kvcache.ErrContextFull", err)
	}
	if s.Tokens() != 6 {
		t.Errorf("session has seen %d tokens, want 6", s.Tokens())
	}
	if _, _, err := s.Rows(len(m.Layers)); err == nil {
		t.Error("Rows of a layer past the last: no error")
	}
	broken := *m
	broken.OutputNorm = broken.OutputNorm[:3]
	if _, err := broken.NewSession(fullSpec(&broken)); err == nil {
		t.Error("NewSession on a model with a short output norm: no error")
	}
}
