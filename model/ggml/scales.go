package ggml

import (
	"encoding/binary"
	"fmt"
)

// scaleOffsets are the byte offsets of each block's f16 scales.
var scaleOffsets = map[Type][]int{
	Q8_0: {0}, Q4_0: {0}, Q4_1: {0, 2}, Q5_0: {0}, Q5_1: {0, 2}, IQ4_NL: {0},
	Q4_K: {0, 2}, Q5_K: {0, 2}, Q6_K: {208},
}

// CheckScales reports the first block of data (type t) whose f16 scale is
// infinite or NaN: it would poison every value computed from the block,
// silently. Types without checked scales pass.
func CheckScales(t Type, data []byte) error {
	offs, ok := scaleOffsets[t]
	if !ok {
		return nil
	}
	bb := t.BlockBytes()
	for b := 0; b+bb <= len(data); b += bb {
		for _, o := range offs {
			h := binary.LittleEndian.Uint16(data[b+o:])
			if h&0x7c00 == 0x7c00 { // exponent all ones: Inf or NaN
				return fmt.Errorf("%v block %d has a non-finite scale (%v at byte %d of the block)", t, b/bb, F16ToF32(h), o)
			}
		}
	}
	return nil
}
