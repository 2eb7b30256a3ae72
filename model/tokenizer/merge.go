package tokenizer

// This file holds the merge loop shared by all models: the text starts as a
// chain of symbols, and the adjacent pair with the highest priority is merged
// until no pair qualifies. SentencePiece and llama2.c rank a pair by the
// score of the token it forms (llama.cpp's llm_tokenizer_spm, llama2.c's
// encode), byte-level BPE by its merge rank (llm_tokenizer_bpe). Ties go to
// the leftmost pair in both.

import "math"

// symbol is text[start:start+n], linked to its neighbours in the chain.
type symbol struct {
	start, n   int
	prev, next int // -1 at the ends
}

// candidate is a possible merge of symbols left and right; size is their
// combined length when queued, which tells stale entries apart. order sorts
// candidates: the merge's rank (lower first) above the left symbol's index.
type candidate struct {
	order       uint64
	left, right int
	size        int
}

// merger runs the merge loop. rank reports whether two adjacent symbols may
// merge, and the rank of that merge: lower ranks merge first.
type merger struct {
	text  string
	syms  []symbol
	queue []candidate // min-heap on order
	rank  func(text string, left, right symbol) (uint32, bool)
}

// scoreRank ranks a token score so that higher scores come first.
func scoreRank(score float32) uint32 {
	// IEEE bits made to sort as unsigned integers, then reversed.
	b := math.Float32bits(score)
	if b&(1<<31) != 0 {
		b = ^b
	} else {
		b |= 1 << 31
	}
	return ^b
}

// reset starts over on text, one symbol per UTF-8 character, its length
// read from the lead byte only (llama.cpp's unicode_len_utf8).
func (m *merger) reset(text string) {
	m.text, m.syms, m.queue = text, m.syms[:0], m.queue[:0]
	for off := 0; off < len(text); {
		n := min(utf8Len(text[off]), len(text)-off)
		m.syms = append(m.syms, symbol{start: off, n: n})
		off += n
	}
}

// utf8Len is the sequence length announced by a UTF-8 lead byte; other
// bytes count as one.
func utf8Len(b byte) int {
	switch b >> 4 {
	case 0xc, 0xd:
		return 2
	case 0xe:
		return 3
	case 0xf:
		return 4
	}
	return 1
}

// run merges until no candidate is left. Afterwards pieces yields the
// surviving symbols' text in order.
func (m *merger) run() {
	for i := range m.syms {
		m.syms[i].prev, m.syms[i].next = i-1, i+1
	}
	if len(m.syms) > 0 {
		m.syms[len(m.syms)-1].next = -1
	}
	if cap(m.queue) < len(m.syms) {
		m.queue = make([]candidate, 0, len(m.syms))
	}
	for i := 1; i < len(m.syms); i++ {
		m.consider(i-1, i)
	}
	for len(m.queue) > 0 {
		c := m.pop()
		l, r := &m.syms[c.left], &m.syms[c.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != c.size {
			continue // one side was merged since this pair was queued
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			m.syms[r.next].prev = c.left
		}
		m.consider(l.prev, c.left)
		m.consider(c.left, l.next)
	}
}

// pieces calls yield with the text of each surviving symbol, in order.
func (m *merger) pieces(yield func(string) bool) {
	for i := 0; i >= 0 && i < len(m.syms); i = m.syms[i].next {
		s := m.syms[i]
		if !yield(m.text[s.start : s.start+s.n]) {
			return
		}
	}
}

func (m *merger) consider(left, right int) {
	if left < 0 || right < 0 {
		return
	}
	l, r := m.syms[left], m.syms[right]
	if rank, ok := m.rank(m.text, l, r); ok {
		order := uint64(rank)<<32 | uint64(uint32(left))
		m.push(candidate{order: order, left: left, right: right, size: l.n + r.n})
	}
}

func (m *merger) before(a, b candidate) bool { return a.order < b.order }

func (m *merger) push(c candidate) {
	m.queue = append(m.queue, c)
	h := m.queue
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !m.before(h[i], h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (m *merger) pop() candidate {
	h := m.queue
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		best, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && m.before(h[l], h[best]) {
			best = l
		}
		if r < len(h) && m.before(h[r], h[best]) {
			best = r
		}
		if best == i {
			break
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
	m.queue = h
	return top
}
