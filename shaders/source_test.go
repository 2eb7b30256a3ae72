package shaders

import (
	"strings"
	"testing"

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
	for _, f := range []string{"matmul.wgsl", "matmul_vec4.wgsl", "matmul_q.wgsl", "matmul_vec4_ux.wgsl", "matmul_q_ux.wgsl"} {
		src, err := Source(f)
		require.NoError(t, err)
		require.Equal(t, 1, strings.Count(src, "fn store("), f)
	}
	for _, f := range []string{"attention.wgsl", "attention_vec4.wgsl"} {
		src, err := Source(f)
		require.NoError(t, err)
		require.Equal(t, 1, strings.Count(src, "fn span("), f)
	}
	_, err := Source("no_such.wgsl")
	require.Error(t, err)
}
