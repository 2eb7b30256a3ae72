package shaders

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

// How the kernels that read an engine.Weight (matmul, its backward, embedding) see it:
// the WTYPE constant of its element type, and parts that tile its rows.

// weightCode is the WTYPE constant of the weight kernels.
func weightCode(t engine.DType) (int, bool) {
	switch t {
	case engine.F32:
		return 0, true
	case engine.F16:
		return 1, true
	case engine.Q8_0:
		return 2, true
	case engine.Q4_0:
		return 3, true
	case engine.Q4_K:
		return 4, true
	case engine.Q5_K:
		return 5, true
	case engine.Q6_K:
		return 6, true
	case engine.Q4_1:
		return 7, true
	case engine.Q5_0:
		return 8, true
	case engine.Q5_1:
		return 9, true
	case engine.IQ4_NL:
		return 10, true
	}
	return 0, false
}

// checkParts verifies that a weight's parts tile its rows in order with its
// type and row length, so a launcher can trust Row0 and Rows.
func checkParts(what string, w *engine.Weight) error {
	row0 := 0
	for i, part := range w.Parts {
		if part == nil || part.DType != w.DType || part.Cols != w.Cols || part.Rows < 1 || w.Row0(i) != row0 {
			return fmt.Errorf("%s: part %d does not continue the [%d,%d] %s weight at row %d", what, i, w.Rows, w.Cols, w.DType, row0)
		}
		row0 += part.Rows
	}
	if row0 != w.Rows {
		return fmt.Errorf("%s: parts hold %d rows, the weight %d", what, row0, w.Rows)
	}
	return nil
}
