package engine

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseBindings(t *testing.T) {
	src := `
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;`
	got, err := parseBindings(src)
	require.NoError(t, err)
	require.Equal(t, []bindingDecl{{0, true, false}, {1, false, true}, {2, false, false}}, got)

	_, err = parseBindings("@group(0) @binding(0) var<storage, read> a: array<f32>;")
	require.ErrorContains(t, err, "uniform")
	_, err = parseBindings("@group(0) @binding(0) var<uniform> p: P;\n@group(0) @binding(2) var<storage, read> a: array<f32>;")
	require.ErrorContains(t, err, "gaps")
	_, err = parseBindings("fn main() {}")
	require.Error(t, err)
}

func TestSpecialiseKeepsEnableFirst(t *testing.T) {
	out := specialise("enable f16;\nfn f() {}\n", Constants{"WG": "64u", "A": "1.0"})
	lines := strings.Split(out, "\n")
	require.Equal(t, "enable f16;", lines[0])
	require.Equal(t, "const A = 1.0;", lines[1])
	require.Equal(t, "const WG = 64u;", lines[2])
}

func TestGrid(t *testing.T) {
	for _, n := range []int{1, 63, 64, 65, 65535 * 64, 65535*64 + 1, 10_000_000} {
		g := Grid(n, 64)
		require.LessOrEqual(t, g[0], uint32(65535))
		require.GreaterOrEqual(t, int(g[0])*int(g[1])*64, n, "n=%d", n)
		require.Less(t, (int(g[0])*int(g[1])-int(g[0]))*64, n, "n=%d: a whole row of workgroups is idle", n)
	}
}

func TestDTypeRowBytes(t *testing.T) {
	for _, c := range []struct {
		t    DType
		cols int
		want uint64
	}{{F32, 3, 12}, {F16, 3, 6}, {Q8_0, 64, 68}, {Q4_0, 96, 54}, {U32, 1, 4}, {Q4_K, 512, 288}, {Q5_K, 256, 176}, {Q6_K, 768, 630}, {Q4_1, 64, 40}, {Q5_0, 64, 44}, {Q5_1, 32, 24}, {IQ4_NL, 96, 54}} {
		got, err := c.t.RowBytes(c.cols)
		require.NoError(t, err)
		require.Equal(t, c.want, got, "%s x %d", c.t, c.cols)
	}
	_, err := Q8_0.RowBytes(33)
	require.ErrorContains(t, err, "multiple of 32")
}

func TestChoose(t *testing.T) {
	infos := []AdapterInfo{{Name: "llvmpipe (LLVM 15.0.6, 256 bits)", isCPU: true}, {Name: "NVIDIA H200", isDiscrete: true}, {Name: "Intel UHD", isIntegrated: true}}
	i, err := choose(infos, "")
	require.NoError(t, err)
	require.Equal(t, 1, i, "discrete first")
	i, err = choose(infos, "llvm")
	require.NoError(t, err)
	require.Equal(t, 0, i)
	i, err = choose(infos, "2")
	require.NoError(t, err)
	require.Equal(t, 2, i)
	_, err = choose(infos, "7")
	require.ErrorContains(t, err, "out of range")
	_, err = choose(infos, "radeon")
	require.ErrorContains(t, err, "no adapter matches")
}
