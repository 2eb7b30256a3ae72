package pretok

import (
	"slices"
	"unicode"
	"unicode/utf8"
)

// decodeLenient decodes UTF-8 the way llama.cpp's unicode_cpts_from_utf8
// does, so that pre-tokens match its output byte for byte: overlong forms and
// surrogates are accepted as the code points they spell, and each byte that
// starts no well-formed sequence becomes U+FFFD on its own.
func decodeLenient(s string) []rune {
	out := make([]rune, 0, len(s))
	for i := 0; i < len(s); {
		r, n := decodeOne(s[i:])
		out = append(out, r)
		i += n
	}
	return out
}

func decodeOne(s string) (rune, int) {
	b0 := s[0]
	var need int
	var r rune
	switch {
	case b0 < 0x80:
		return rune(b0), 1
	case b0&0x40 == 0: // stray continuation byte
		return utf8.RuneError, 1
	case b0&0x20 == 0:
		need, r = 1, rune(b0&0x1f)
	case b0&0x10 == 0:
		need, r = 2, rune(b0&0x0f)
	case b0&0x08 == 0:
		need, r = 3, rune(b0&0x07)
	default:
		return utf8.RuneError, 1
	}
	if len(s) <= need {
		return utf8.RuneError, 1
	}
	for k := 1; k <= need; k++ {
		if s[k]&0xc0 != 0x80 {
			return utf8.RuneError, 1
		}
		r = r<<6 | rune(s[k]&0x3f)
	}
	if r > unicode.MaxRune {
		// llama.cpp fails on these; treat the lead byte as invalid instead.
		return utf8.RuneError, 1
	}
	return r, need + 1
}

// appendCodepoint encodes r like llama.cpp's unicode_cpt_to_utf8, which
// (unlike utf8.AppendRune) keeps surrogates as their three-byte form.
func appendCodepoint(b []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(b, byte(r))
	case r < 0x800:
		return append(b, 0xc0|byte(r>>6), 0x80|byte(r&0x3f))
	case r < 0x10000:
		return append(b, 0xe0|byte(r>>12), 0x80|byte(r>>6&0x3f), 0x80|byte(r&0x3f))
	default:
		return append(b, 0xf0|byte(r>>18), 0x80|byte(r>>12&0x3f), 0x80|byte(r>>6&0x3f), 0x80|byte(r&0x3f))
	}
}

// props are the Unicode properties the pre-tokenizer expressions test.
type props uint8

const (
	letter props = 1 << iota // \p{L}
	number                   // \p{N}
	punct                    // \p{P}
	space                    // \s: Unicode White_Space, as llama.cpp's tables
)

var asciiProps = func() (t [utf8.RuneSelf]props) {
	for r := range t {
		t[r] = lookupProps(rune(r))
	}
	return t
}()

func propsOf(r rune) props {
	if r >= 0 && r < utf8.RuneSelf {
		return asciiProps[r]
	}
	return lookupProps(r)
}

func lookupProps(r rune) props {
	var p props
	switch {
	case unicode.IsLetter(r):
		p = letter
	case unicode.IsNumber(r):
		p = number
	case unicode.IsPunct(r):
		p = punct
	}
	if unicode.Is(unicode.White_Space, r) {
		p |= space
	}
	return p
}

// runeRange is an inclusive range of code points in an explicit character class.
type runeRange struct{ lo, hi rune }

// charClass is a set of code points kept as sorted ranges.
type charClass []runeRange

func newClass(ranges ...runeRange) charClass {
	c := charClass(slices.Clone(ranges))
	slices.SortFunc(c, func(a, b runeRange) int { return int(a.lo - b.lo) })
	// Merge overlaps so that binary search sees disjoint ranges.
	merged := c[:0]
	for _, rg := range c {
		if n := len(merged); n > 0 && rg.lo <= merged[n-1].hi+1 {
			merged[n-1].hi = max(merged[n-1].hi, rg.hi)
			continue
		}
		merged = append(merged, rg)
	}
	return merged
}

func (c charClass) has(r rune) bool {
	i, _ := slices.BinarySearchFunc(c, r, func(rg runeRange, r rune) int {
		switch {
		case rg.hi < r:
			return -1
		case rg.lo > r:
			return 1
		}
		return 0
	})
	return i < len(c) && c[i].lo <= r && r <= c[i].hi
}
