package llama

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

// PlainForward reports, as an error naming it, the first thing about the
// model that code rebuilding the forward pass from Tensors (training) would
// miss: rope types other than plain and linear, per-head Q/K norms, a
// sliding window, a rope attention factor, or matrices in a block type the
// backward kernels don't decode. nil when Tensors and the hyper-parameters'
// plain RoPE describe the model fully.
func (m *Model) PlainForward() error {
	h := m.H
	switch {
	case h.RopeType() != "none" && h.RopeType() != "linear":
		return fmt.Errorf("rope type %s is not implemented here (only plain and linear RoPE)", h.RopeType())
	case h.RopeAttnFactor != 0 && h.RopeAttnFactor != 1:
		return fmt.Errorf("a rope attention factor of %g is not implemented here", h.RopeAttnFactor)
	case h.QKNorm:
		return fmt.Errorf("per-head query/key norms (%s) are not implemented here", h.Arch)
	case h.EmbedScale || h.GELU || h.PostNorms || h.AttnSoftcap > 0 || h.FinalSoftcap > 0 || h.QueryScale > 0:
		return fmt.Errorf("%s's embedding scale, GELU gating, post-norms and softcaps are not implemented here", h.Arch)
	case h.SlidingWindow > 0:
		return fmt.Errorf("a sliding attention window of %d is not implemented here", h.SlidingWindow)
	}
	for _, w := range m.all() {
		if w, ok := w.(*engine.Weight); ok {
			switch w.DType {
			case engine.F32, engine.F16, engine.Q8_0, engine.Q4_0:
			default:
				return fmt.Errorf("weight %q is %s, which the backward kernels don't read (f32, f16, q8_0, q4_0)", w.Label, w.DType)
			}
		}
	}
	return nil
}
