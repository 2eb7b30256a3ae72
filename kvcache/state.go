package kvcache

import (
	"fmt"
)

// State is everything a cache holds: its stored rows (every matrix in full, so a window's
// ring and a FreqKV cache's compressed rows come back as they were) and its bookkeeping.
// Saving and loading it resumes a sequence exactly, where feeding its tokens again would
// compress at other chunk boundaries.
type State struct {
	Spec         Spec
	Geometry     Geometry
	Rows         int      // logical rows stored
	Compressions int      // FreqKV compressions so far
	Tokens       int      // tokens committed
	Matrices     [][]byte // 2 per layer (K, V), each Cap rows in the storage type
}

// SaveState reads p's rows back from the device.
func SaveState(p Policy) (*State, error) {
	s, rows, comp, tokens, err := internals(p)
	if err != nil {
		return nil, err
	}
	st := &State{Spec: s.spec, Geometry: s.g, Rows: *rows, Tokens: tokens.tokens}
	if comp != nil {
		st.Compressions = *comp
	}
	for _, m := range s.matrices {
		rb, err := m.DType.RowBytes(m.Cols)
		if err != nil {
			return nil, err
		}
		b, err := m.Buf.Read(m.Offset, rb*uint64(m.Rows))
		if err != nil {
			return nil, fmt.Errorf("kvcache: read state: %w", err)
		}
		st.Matrices = append(st.Matrices, b)
	}
	return st, nil
}

// LoadState puts st into p, which must have been made with the same Spec and Geometry.
func LoadState(p Policy, st *State) error {
	s, rows, comp, tokens, err := internals(p)
	if err != nil {
		return err
	}
	switch {
	case !st.Spec.Equal(s.spec):
		return fmt.Errorf("kvcache: the saved cache is %+v, this one %+v", st.Spec, s.spec)
	case st.Geometry != s.g:
		return fmt.Errorf("kvcache: the saved cache has geometry %+v, this one %+v (another model)", st.Geometry, s.g)
	case len(st.Matrices) != len(s.matrices):
		return fmt.Errorf("kvcache: the saved cache has %d matrices, this one %d", len(st.Matrices), len(s.matrices))
	case st.Rows < 0 || st.Tokens < 0 || st.Compressions < 0:
		return fmt.Errorf("kvcache: the saved cache's counts are negative")
	case comp == nil && st.Compressions != 0:
		return fmt.Errorf("kvcache: the saved cache has compressions; a %v cache has none", s.spec.Kind)
	}
	if s.spec.Kind != Window && st.Rows > s.cap {
		return fmt.Errorf("kvcache: the saved cache has %d rows, over its %d", st.Rows, s.cap)
	}
	for i, m := range s.matrices {
		rb, err := m.DType.RowBytes(m.Cols)
		if err != nil {
			return err
		}
		if uint64(len(st.Matrices[i])) != rb*uint64(m.Rows) {
			return fmt.Errorf("kvcache: saved matrix %d has %d bytes, want %d", i, len(st.Matrices[i]), rb*uint64(m.Rows))
		}
	}
	for i, m := range s.matrices {
		if err := m.Buf.Write(m.Offset, st.Matrices[i]); err != nil {
			return fmt.Errorf("kvcache: write state: %w", err)
		}
	}
	*rows = st.Rows
	if comp != nil {
		*comp = st.Compressions
	}
	*tokens = committer{tokens: st.Tokens}
	if f, ok := p.(*freqKV); ok && f.sp != nil {
		// The loaded rows come without the spread schedule's partial sums: start them
		// afresh (the next compression catches up, or is done whole).
		clear(f.sp.done)
	}
	return nil
}

// internals are a policy's store and counters.
func internals(p Policy) (s *store, rows, compressions *int, c *committer, err error) {
	switch p := p.(type) {
	case *full:
		return p.s, &p.rows, nil, &p.c, nil
	case *window:
		return p.s, &p.rows, nil, &p.c, nil
	case *freqKV:
		if p.layers != nil {
			// each layer's row count would need saving too
			return nil, nil, nil, nil, fmt.Errorf("kvcache: saving a freqkv cache with per-layer geometry is not implemented")
		}
		return p.s, &p.rows, &p.compressions, &p.c, nil
	}
	if _, ok := p.(*layered); ok {
		return nil, nil, nil, nil, fmt.Errorf("kvcache: a cache with separate sliding-window layers (gemma2, gemma3) cannot be saved or loaded")
	}
	return nil, nil, nil, nil, fmt.Errorf("kvcache: cannot save a %T", p)
}

// UnmarshalText reads a kind by name, the inverse of MarshalText.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}
