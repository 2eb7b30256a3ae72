package llama

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// naiveDistribution is the sampler chain written plainly: sort everything,
// cut, normalise. The judge of the fast distribution.
func naiveDistribution(s *Sampler, logits []float32, history []int32) ([]int32, []float64) {
	l := s.penalised(logits, history)
	idx := make([]int, len(l))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return l[idx[a]] > l[idx[b]] })
	if s.Temperature == 0 {
		return []int32{int32(idx[0])}, []float64{1}
	}
	if s.TopK > 0 && s.TopK < len(idx) {
		idx = idx[:s.TopK]
	}
	p := make([]float64, len(idx))
	sum := 0.0
	for i, id := range idx {
		p[i] = math.Exp((l[id] - l[idx[0]]) / s.Temperature)
		sum += p[i]
	}
	var ids []int32
	var probs []float64
	cum := 0.0
	for i, id := range idx {
		q := p[i] / sum
		if s.MinP > 0 && q < s.MinP*p[0]/sum {
			break
		}
		ids, probs = append(ids, int32(id)), append(probs, q)
		cum += q
		if s.TopP > 0 && s.TopP < 1 && cum >= s.TopP {
			break
		}
	}
	return ids, probs
}

func TestDistributionMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.IntN(3000)
		logits := make([]float32, n)
		for i := range logits {
			logits[i] = float32(r.NormFloat64() * 3)
		}
		if n > 10 {
			logits[3] = logits[7] // a tie
		}
		hist := []int32{int32(r.IntN(n)), int32(r.IntN(n)), 0}
		s := &Sampler{
			Temperature:   []float64{0, 0.3, 0.8, 1.5}[r.IntN(4)],
			TopK:          []int{0, 1, 5, 40, n + 3}[r.IntN(5)],
			TopP:          []float64{0, 0.5, 0.9, 1}[r.IntN(4)],
			MinP:          []float64{0, 0.01, 0.1}[r.IntN(3)],
			RepeatPenalty: []float64{1, 1.3}[r.IntN(2)],
		}
		gotIDs, gotP := s.distribution(logits, hist)
		wantIDs, wantP := naiveDistribution(s, logits, hist)
		require.Equal(t, wantIDs, gotIDs, "trial %d %+v", trial, *s)
		require.InDeltaSlice(t, wantP, gotP, 1e-12, "trial %d", trial)
	}
}

func BenchmarkSample128K(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	l := make([]float32, 128256)
	for i := range l {
		l[i] = float32(r.NormFloat64() * 3)
	}
	s := &Sampler{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1, Seed: 1}
	hist := make([]int32, 64)
	for i := 0; i < b.N; i++ {
		s.Sample(l, hist)
	}
}

// TestSamplerValidateNonFinite: NaN and infinities fail every range.
func TestSamplerValidateNonFinite(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, s := range []Sampler{
		{Temperature: nan}, {Temperature: inf}, {TopP: nan}, {MinP: nan}, {MinP: inf},
		{RepeatPenalty: nan}, {RepeatPenalty: inf}, {RepeatWindow: -1}, {TopK: -1},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	ok := Sampler{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1, RepeatWindow: 64}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}
