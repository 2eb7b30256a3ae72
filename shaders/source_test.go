package shaders

import (
	"strings"
	"testing"

	"github.com/freqkv/freqkv/engine"
	"github.com/stretchr/testify/require"
)

// TestSourceIncludes: every embedded file expands with no #include left,
// and the kernels that share fragments get them spliced in.
func TestSourceIncludes(t *testing.T) {
	for _, f := range Files() {
		src, err := Source(f)
		require.NoError(t, err, f)
		require.NotContains(t, src, "\n#include \"", f)
	}
	for _, f := range []string{"matmul.wgsl", "matmul_vec4.wgsl", "matmul_q.wgsl", "matmul_vec4_ux.wgsl", "matmul_q_ux.wgsl", "matmul_vec4_xtile.wgsl", "matmul_q_xtile.wgsl"} {
		src, err := Source(f)
		require.NoError(t, err)
		require.Equal(t, 1, strings.Count(src, "fn store("), f)
	}
	for _, f := range []string{"matmul_vec4_xtile.wgsl", "matmul_q_xtile.wgsl"} {
		src, err := Source(f)
		require.NoError(t, err)
		require.Equal(t, 1, strings.Count(src, "fn store_tile("), f)
	}
	for _, f := range []string{"matmul_q.wgsl", "matmul_q_ux.wgsl", "matmul_q_xtile.wgsl"} {
		src, err := Source(f)
		require.NoError(t, err)
		require.Equal(t, 1, strings.Count(src, "fn i8x4("), f)
	}
	for _, f := range []string{"attention.wgsl", "attention_vec4.wgsl"} {
		src, err := Source(f)
		require.NoError(t, err)
		require.Equal(t, 1, strings.Count(src, "fn span("), f)
	}
	_, err := Source("no_such.wgsl")
	require.Error(t, err)
}

func TestUnroll(t *testing.T) {
	src := "a\n  #unroll i N\n  s[i] += t[j];\n  #unroll j M\n  u[i][j] = i + j;\n  #end j\n  #end i\nb\n"
	got, err := unroll(src, engine.Constants{"N": "2u", "M": "2u"})
	require.NoError(t, err)
	require.Equal(t, "a\n  s[0u] += t[j];\n  u[0u][0u] = 0u + 0u;\n  u[0u][1u] = 0u + 1u;\n"+
		"  s[1u] += t[j];\n  u[1u][0u] = 1u + 0u;\n  u[1u][1u] = 1u + 1u;\nb\n", got)
	_, err = unroll("#unroll i N\nx\n#end j\n", engine.Constants{"N": "2u"})
	require.ErrorContains(t, err, "#end j")
	_, err = unroll("#unroll i N\nx\n#end i\n", engine.Constants{})
	require.ErrorContains(t, err, "constant")
}
