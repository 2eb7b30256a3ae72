package pretok

// A matcher stands for one regular expression: it returns the length of the
// match that ECMAScript (leftmost, first alternative wins, greedy with
// backtracking) would find starting exactly at text[pos], reading nothing at
// or past end; 0 means no match starts there. None of the expressions used
// can match the empty string, so 0 is unambiguous.
type matcher func(text []rune, pos, end int) int

func isLetter(r rune) bool { return propsOf(r)&letter != 0 }
func isNumber(r rune) bool { return propsOf(r)&number != 0 }
func isPunct(r rune) bool  { return propsOf(r)&punct != 0 }
func isSpace(r rune) bool  { return propsOf(r)&space != 0 }

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return propsOf(r)&(letter|number|space) == 0 }

func isNewline(r rune) bool { return r == '\r' || r == '\n' }

// countRun counts the runes from pos on that satisfy in.
func countRun(text []rune, pos, end int, in func(rune) bool) int {
	n := 0
	for pos+n < end && in(text[pos+n]) {
		n++
	}
	return n
}

// runOf is X+.
func runOf(in func(rune) bool) matcher {
	return func(text []rune, pos, end int) int { return countRun(text, pos, end, in) }
}

// oneOf is X.
func oneOf(in func(rune) bool) matcher {
	return func(text []rune, pos, end int) int {
		if in(text[pos]) {
			return 1
		}
		return 0
	}
}

// prefixedRun is P?X+: one rune of P is taken only when X+ follows it.
func prefixedRun(prefix, in func(rune) bool) matcher {
	return func(text []rune, pos, end int) int {
		if prefix(text[pos]) && pos+1 < end {
			if n := countRun(text, pos+1, end, in); n > 0 {
				return 1 + n
			}
		}
		return countRun(text, pos, end, in)
	}
}

func isBlank(r rune) bool { return r == ' ' }

// contraction is 's|'t|'re|'ve|'m|'ll|'d, optionally ignoring ASCII case.
func contraction(text []rune, pos, end int, ignoreCase bool) int {
	if text[pos] != '\'' || pos+1 >= end {
		return 0
	}
	fold := func(r rune) rune {
		if ignoreCase && 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	switch fold(text[pos+1]) {
	case 's', 't', 'm', 'd':
		return 2
	}
	if pos+2 >= end {
		return 0
	}
	a, b := fold(text[pos+1]), fold(text[pos+2])
	if (a == 'r' || a == 'v') && b == 'e' || a == 'l' && b == 'l' {
		return 3
	}
	return 0
}

// spacesNotBeforeText is \s+(?!\S): a run of whitespace, less its last rune
// when text follows (that rune then prefixes the next word).
func spacesNotBeforeText(text []rune, pos, end int) int {
	n := countRun(text, pos, end, isSpace)
	switch {
	case n == 0:
		return 0
	case pos+n == end:
		return n
	case n > 1:
		return n - 1
	}
	return 0
}

// matchGPT2 is GPT-2's expression:
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
func matchGPT2(text []rune, pos, end int) int {
	if n := contraction(text, pos, end, false); n > 0 {
		return n
	}
	for _, in := range [...]func(rune) bool{isLetter, isNumber, isOther} {
		if n := prefixedRun(isBlank, in)(text, pos, end); n > 0 {
			return n
		}
	}
	return spacesNotBeforeText(text, pos, end)
}

// llama3Matcher is Llama 3's expression, with \p{N}{1,maxDigits}:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//	 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// Qwen2 uses the same with single digits.
func llama3Matcher(maxDigits int) matcher {
	notNewlineLetterNumber := func(r rune) bool { return !isNewline(r) && propsOf(r)&(letter|number) == 0 }
	letters := prefixedRun(notNewlineLetterNumber, isLetter)
	others := prefixedRun(isBlank, isOther)
	return func(text []rune, pos, end int) int {
		if n := contraction(text, pos, end, true); n > 0 {
			return n
		}
		if n := letters(text, pos, end); n > 0 {
			return n
		}
		if n := countRun(text, pos, end, isNumber); n > 0 {
			return min(n, maxDigits)
		}
		if n := others(text, pos, end); n > 0 {
			return n + countRun(text, pos+n, end, isNewline)
		}
		n := countRun(text, pos, end, isSpace)
		if n == 0 {
			return 0
		}
		// \s*[\r\n]+ backtracks to the last line break in the run.
		for k := n - 1; k >= 0; k-- {
			if isNewline(text[pos+k]) {
				return k + 1
			}
		}
		if m := spacesNotBeforeText(text, pos, end); m > 0 {
			return m
		}
		return n // \s+
	}
}

// digitTriple is [0-9][0-9][0-9].
func digitTriple(text []rune, pos, end int) int {
	if pos+3 > end {
		return 0
	}
	for _, r := range text[pos : pos+3] {
		if r < '0' || r > '9' {
			return 0
		}
	}
	return 3
}

// spacesToEnd is \s+$.
func spacesToEnd(text []rune, pos, end int) int {
	if n := countRun(text, pos, end, isSpace); n > 0 && pos+n == end {
		return n
	}
	return 0
}

// punctOr is [\p{P}...]: punctuation or one of the listed ASCII symbols.
func punctOr(symbols string) func(rune) bool {
	return func(r rune) bool {
		if isPunct(r) {
			return true
		}
		for _, s := range symbols {
			if r == s {
				return true
			}
		}
		return false
	}
}

// inWide tests an explicit character class the way llama.cpp's std::wregex
// fallback sees the text: with every non-ASCII whitespace rune replaced by
// U+000B, so such runes never fall into a class that lists them.
func inWide(c charClass) func(rune) bool {
	return func(r rune) bool {
		if r > 0x7f && isSpace(r) {
			r = 0x0b
		}
		return c.has(r)
	}
}
