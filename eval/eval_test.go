package eval

import (
	"bytes"
	"image/png"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// byteTok is a byte-level vocabulary: id = byte + 3, BOS 1. With noDigits,
// digits encode to the unknown token 0, which decodes to nothing.
type byteTok struct{ noDigits bool }

func (t byteTok) Encode(s string, bos bool) ([]int32, error) {
	var out []int32
	if bos {
		out = append(out, 1)
	}
	for _, b := range []byte(s) {
		if t.noDigits && b >= '0' && b <= '9' {
			out = append(out, 0)
			continue
		}
		out = append(out, int32(b)+3)
	}
	return out, nil
}

func (t byteTok) Decode(ids []int32) (string, error) {
	var b []byte
	for _, id := range ids {
		if id >= 3 {
			b = append(b, byte(id-3))
		}
	}
	return string(b), nil
}
func (byteTok) BOS() int32   { return 1 }
func (byteTok) AddBOS() bool { return true }

// windowLM is a fake model that sees only the last `window` tokens (all when
// 0). It answers a passkey by copying the digits after "pass key is " if
// that is in view; its NLL of a token is 0 when the token's predecessor
// bigram occurred earlier in view followed by it, else 1.
type windowLM struct {
	window int
	seen   []int32
}

func (l *windowLM) Reset() { l.seen = l.seen[:0] }

func (l *windowLM) view() []int32 {
	if l.window > 0 && len(l.seen) > l.window {
		return l.seen[len(l.seen)-l.window:]
	}
	return l.seen
}

func (l *windowLM) NLL(tokens, targets []int32) ([]float64, error) {
	out := make([]float64, len(tokens))
	for i, t := range tokens {
		l.seen = append(l.seen, t)
		v := l.view()
		out[i] = 1
		// copyable: the last token occurred before in view, followed by the target
		for j := 0; j+1 < len(v)-1; j++ {
			if v[j] == t && v[j+1] == targets[i] {
				out[i] = 0
				break
			}
		}
	}
	return out, nil
}

func (l *windowLM) Greedy(prompt []int32, n int) ([]int32, error) {
	l.seen = append(l.seen, prompt...)
	text, _ := byteTok{}.Decode(l.view())
	i := strings.Index(text, "pass key is ")
	if i < 0 {
		return byteTok{}.Encode(" no idea", false)
	}
	ans, _ := byteTok{}.Encode(" "+FirstNumber(text[i:])+".", false)
	return ans[:min(n, len(ans))], nil
}

func TestBuildPasskeyLayout(t *testing.T) {
	tok := byteTok{}
	f, err := NewFiller(tok, DefaultFiller, true, 2000)
	require.NoError(t, err)
	for _, depth := range []float64{0, 0.3, 1} {
		p, err := BuildPasskey(tok, f, 1500, depth, "48213", 0)
		require.NoError(t, err)
		require.Len(t, p.Tokens, 1500)
		require.Equal(t, int32(1), p.Tokens[0])
		text, _ := tok.Decode(p.Tokens)
		require.Equal(t, 2, strings.Count(text, "48213"))
		require.True(t, strings.HasSuffix(text, "The pass key is"))
		intro, _ := tok.Encode(passkeyIntro, false)
		sentence, _ := tok.Encode(" The pass key is 48213. Remember it. 48213 is the pass key.", false)
		question, _ := tok.Encode(passkeyQuestion, false)
		fill := 1500 - 1 - len(intro) - len(sentence) - len(question)
		require.Equal(t, 1+len(intro)+int(math.Round(depth*float64(fill))), p.KeyAt)
		require.Equal(t, sentence, p.Tokens[p.KeyAt:p.KeyAt+len(sentence)])
	}
	_, err = BuildPasskey(tok, f, 100, 0.5, "48213", 0)
	require.ErrorContains(t, err, "length 100 is below")
}

func TestPasskeyBadInput(t *testing.T) {
	tok := byteTok{}
	_, err := NewFiller(tok, " \n ", true, 10)
	require.ErrorContains(t, err, "empty")
	f, err := NewFiller(tok, "some real text to cut from.", false, 10)
	require.NoError(t, err)
	good := PasskeyConfig{Lengths: []int{400}, Depths: []float64{0, 1}, Trials: 1, Digits: 5}
	for _, c := range []PasskeyConfig{
		{Lengths: []int{400}, Depths: []float64{1.5}, Trials: 1, Digits: 5},
		{Lengths: []int{400}, Depths: []float64{-0.1}, Trials: 1, Digits: 5},
		{Lengths: []int{400}, Depths: []float64{math.NaN()}, Trials: 1, Digits: 5},
		{Lengths: []int{400}, Depths: []float64{0}, Trials: 0, Digits: 5},
		{Lengths: []int{10}, Depths: []float64{0}, Trials: 1, Digits: 5},
	} {
		_, err := PasskeyPrompts(tok, f, c)
		require.Error(t, err, "%+v", c)
	}
	_, err = PasskeyPrompts(byteTok{noDigits: true}, f, good)
	require.ErrorContains(t, err, "cannot spell digits")
	ps, err := PasskeyPrompts(tok, f, good)
	require.NoError(t, err)
	require.Len(t, ps, 2)
}

func TestRunPasskeyScoresMemory(t *testing.T) {
	tok := byteTok{}
	f, err := NewFiller(tok, DefaultFiller, true, 1000)
	require.NoError(t, err)
	c := PasskeyConfig{Lengths: []int{500, 1000}, Depths: []float64{0, 1}, Trials: 3, Digits: 5, Seed: 7}
	ps, err := PasskeyPrompts(tok, f, c)
	require.NoError(t, err)
	again, err := PasskeyPrompts(tok, f, c)
	require.NoError(t, err)
	require.Equal(t, ps, again, "the same seed gives the same prompts")
	full, err := RunPasskey(&windowLM{}, tok, ps, nil)
	require.NoError(t, err)
	require.Equal(t, 1.0, full.Accuracy)
	// A model that sees the last 300 tokens finds keys at depth 1 (near the
	// question) and loses those at depth 0 once the prompt outgrows its view.
	short, err := RunPasskey(&windowLM{window: 300}, tok, ps, nil)
	require.NoError(t, err)
	acc := map[[2]float64]float64{}
	for _, cell := range short.Cells {
		require.Equal(t, 3, cell.Trials)
		acc[[2]float64{float64(cell.Length), cell.Depth}] = cell.Accuracy
	}
	require.Equal(t, 0.0, acc[[2]float64{500, 0}])
	require.Equal(t, 1.0, acc[[2]float64{500, 1}])
	require.Equal(t, 0.0, acc[[2]float64{1000, 0}])
	require.Equal(t, 1.0, acc[[2]float64{1000, 1}])
	require.Equal(t, 0.5, short.Accuracy)
	for _, tr := range short.Trials {
		require.Len(t, tr.Key, 5)
		require.Equal(t, tr.Correct, tr.Answer == tr.Key)
	}
}

func TestFirstNumber(t *testing.T) {
	for in, want := range map[string]string{" 48213. Rem": "48213", "no": "", "12": "12", "a 7b 9": "7"} {
		require.Equal(t, want, FirstNumber(in), in)
	}
}

func TestRepeatLayoutAndGain(t *testing.T) {
	tok := byteTok{}
	ids, _ := tok.Encode(strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", 40), false)
	// make every token unique-ish so the fake copy model only copies real repeats
	for i := range ids {
		ids[i] = int32(3 + i)
	}
	c := RepeatConfig{Segment: 16, Gaps: []int{0, 50, 200}, Trials: 3, Seed: 1}
	seqs, err := RepeatSequences(tok, ids, c)
	require.NoError(t, err)
	require.Len(t, seqs, 9)
	for _, s := range seqs {
		require.Equal(t, 1, s.First)
		require.Equal(t, 1+16+s.Gap, s.Second)
		require.Equal(t, s.Repeat[s.First:s.First+16], s.Repeat[s.Second:s.Second+16])
		require.Equal(t, s.Repeat[s.Second:], s.Control[s.Second:])
		require.Equal(t, s.Repeat[:s.Second], slices.Concat([]int32{1}, s.Repeat[1:17], s.Control[17:s.Second]))
		require.NotEqual(t, s.Repeat[1:17], s.Control[1:17])
	}
	// A model seeing 100 tokens copies the repeat at gaps 0 and 50, not 200.
	pts, err := RunRepeat(&windowLM{window: 100}, seqs, 16, nil)
	require.NoError(t, err)
	require.Len(t, pts, 3)
	for _, p := range pts {
		require.Equal(t, 3, p.Trials)
		require.Equal(t, 1.0, p.First)
		require.Equal(t, 1.0, p.Control)
		if p.Gap < 100-16 {
			require.Equal(t, 0.0, p.Repeat, "gap %d", p.Gap)
			require.Equal(t, 1.0, p.Gain)
		} else {
			require.Equal(t, 1.0, p.Repeat, "gap %d", p.Gap)
		}
	}
	_, err = RepeatSequences(tok, ids[:100], c)
	require.ErrorContains(t, err, "need 232")
	_, err = RepeatSequences(tok, ids, RepeatConfig{Segment: 16, Gaps: []int{-1}, Trials: 1})
	require.Error(t, err)
}

// posLM returns NLL = position within the sequence.
type posLM struct{ n int }

func (l *posLM) Reset() { l.n = 0 }
func (l *posLM) NLL(tokens, _ []int32) ([]float64, error) {
	out := make([]float64, len(tokens))
	for i := range out {
		out[i] = float64(l.n)
		l.n++
	}
	return out, nil
}
func (l *posLM) Greedy([]int32, int) ([]int32, error) { return nil, nil }

func TestPositionCurve(t *testing.T) {
	ids := make([]int32, 1000)
	c := CurveConfig{Window: 100, Stride: 300, Bucket: 30, MaxWindows: 0}
	starts, err := CurveWindows(len(ids), c)
	require.NoError(t, err)
	require.Equal(t, []int{0, 300, 600}, starts)
	c.MaxWindows = 2
	starts, err = CurveWindows(len(ids), c)
	require.NoError(t, err)
	require.Equal(t, []int{0, 300}, starts)
	bs, err := PositionCurve(&posLM{}, ids, starts, c, nil)
	require.NoError(t, err)
	require.Equal(t, []Bucket{{0, 30, 60, 14.5}, {30, 60, 60, 44.5}, {60, 90, 60, 74.5}, {90, 100, 20, 94.5}}, bs)
	_, err = CurveWindows(50, c)
	require.ErrorContains(t, err, "fewer than one window")
}

func TestPlots(t *testing.T) {
	var b bytes.Buffer
	pk := PasskeyResult{Accuracy: 0.5, Cells: []PasskeyCell{{Length: 500, Depth: 0, Accuracy: 0}, {Length: 500, Depth: 1, Accuracy: 1}}}
	require.NoError(t, PlotPasskey(&b, "t", []int{500}, []float64{0, 1}, []Named[PasskeyResult]{{"a", pk}, {"b", pk}}))
	require.NoError(t, PlotRepeat(&b, "t", 100, []Named[[]RepeatPoint]{{"a", []RepeatPoint{{Gap: 0, Repeat: 1, Control: 2}, {Gap: 200, Repeat: 2, Control: 2}}}}))
	require.NoError(t, PlotCurve(&b, "t", 100, []Named[[]Bucket]{{"a", []Bucket{{0, 50, 5, 2}, {50, 100, 5, 1}}}}))
	img, err := png.Decode(&b)
	require.NoError(t, err)
	require.Greater(t, img.Bounds().Dx(), 100)
}
