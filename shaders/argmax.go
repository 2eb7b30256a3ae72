package shaders

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

// argmaxWG is the one workgroup's size: 256 is WebGPU's default limit on
// invocations per workgroup.
const argmaxWG = 256

// argmaxMax keeps an invocation's loop iterations, n/argmaxWG and the merge's
// argmaxWG, within loopBudget (llvmpipe's loop cap): 15 M values, far past
// any vocabulary.
const argmaxMax = (loopBudget - argmaxWG) * argmaxWG

// argmaxUniform is argmax.wgsl's Params.
type argmaxUniform struct {
	n uint32 // values to scan
}

// ArgmaxNonFinite is Argmax's answer when its input holds NaN or Inf.
const ArgmaxNonFinite = 0xffffffff

// Argmax records out[0] = the index of the largest of x's first n values,
// the lowest index on ties (greedy sampling), or ArgmaxNonFinite if any of
// them is NaN or infinite.
func (o *Ops) Argmax(rec *engine.Recorder, x, out *engine.Tensor, n int) error {
	if n < 1 {
		return fmt.Errorf("argmax: n = %d, want at least 1", n)
	}
	if n > argmaxMax {
		return fmt.Errorf("argmax: %d values are over the %d one workgroup scans", n, argmaxMax)
	}
	if err := need("argmax", x, engine.F32, n); err != nil {
		return err
	}
	if err := need("argmax", out, engine.U32, 1); err != nil {
		return err
	}
	k, err := o.kernel("argmax.wgsl", "argmax", engine.Constants{"WG": u(argmaxWG)})
	if err != nil {
		return err
	}
	return rec.Dispatch(k, words(argmaxUniform{n: uint32(n)}), [3]uint32{1, 1, 1}, x.Binding(), out.Binding())
}
