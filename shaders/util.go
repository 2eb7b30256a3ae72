package shaders

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

// need checks that a tensor has the dtype and at least the elements a
// kernel will touch, so that no launch reads or writes past its binding.
func need(what string, t *engine.Tensor, dt engine.DType, elems int) error {
	if t == nil {
		return fmt.Errorf("%s: tensor is nil", what)
	}
	if t.DType != dt {
		return fmt.Errorf("%s: tensor %q is %s, want %s", what, t.Buf.Label, t.DType, dt)
	}
	if t.Rows*t.Cols < elems {
		return fmt.Errorf("%s: tensor %q [%d,%d] holds %d elements, the kernel touches %d", what, t.Buf.Label, t.Rows, t.Cols, t.Rows*t.Cols, elems)
	}
	return nil
}

// loopBudget bounds the loop iterations one invocation runs in one dispatch,
// all its loops together, nested ones included: llvmpipe (lavapipe) ends
// every loop of an invocation, silently, once their iterations together reach
// 65535 (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS; docs/webgpu.md). Launchers
// whose loops grow with their input split the work into dispatches, or refuse
// sizes, so that the iterations they count from the WGSL stay within it.
const loopBudget = 60000
