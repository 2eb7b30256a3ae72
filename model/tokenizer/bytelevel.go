package tokenizer

import "unicode/utf8"

// GPT-2's byte-level alphabet: every byte is written as a printable rune so
// that BPE works on text. Printable Latin-1 bytes stand for themselves; the
// others (controls, space, DEL, NBSP, soft hyphen...) take the runes from
// U+0100 on, in byte order.
var (
	byteRunes [256]string       // byte -> its rune, UTF-8 encoded
	runeBytes = map[rune]byte{} // the inverse
)

func init() {
	next := rune(0x100)
	for b := range 256 {
		r := rune(b)
		printable := '!' <= r && r <= '~' || 0xA1 <= r && r <= 0xAC || 0xAE <= r && r <= 0xFF
		if !printable {
			r = next
			next++
		}
		byteRunes[b] = string(r)
		runeBytes[r] = byte(b)
	}
}

// appendByteLevel appends s with each byte replaced by its rune.
func appendByteLevel(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = append(dst, byteRunes[s[i]]...)
	}
	return dst
}

// fromByteLevel turns byte-level text back into bytes. A rune outside the
// alphabet is kept as it is (llama.cpp writes an "[UNK_BYTE_...]" marker).
func fromByteLevel(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if b, ok := runeBytes[r]; ok {
			out = append(out, b)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return string(out)
}
