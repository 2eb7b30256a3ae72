package testvectors

import (
	"testing"

	"github.com/freqkv/freqkv/internal/gputest"
)

// TestBuiltinVectors runs every committed vector on the GPU. It fails when a
// family has no vectors, so an empty run can't pass.
func TestBuiltinVectors(t *testing.T) {
	dev := gputest.Device(t)
	vs, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	run := NewRun(dev)
	defer run.Release()
	perKernel := map[string]int{}
	for _, v := range vs {
		res := run.Execute(v)
		perKernel[v.Kernel]++
		if res.Err != nil {
			t.Errorf("%s: %v", v.Name, res.Err)
			continue
		}
		if !res.OK {
			t.Errorf("%s (%s): max abs %.3g > tolerance %.3g (max rel %.3g)", v.Name, res.Shape, res.MaxAbs, res.Tol, res.MaxRel)
		}
	}
	for _, k := range Kernels() {
		if perKernel[k] == 0 {
			t.Errorf("kernel %s has a runner but no vectors", k)
		}
	}
	t.Logf("ran %d vectors over %d kernels", len(vs), len(perKernel))
}
