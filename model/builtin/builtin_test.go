package builtin

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEmbeddedModel(t *testing.T) {
	for _, c := range []struct {
		data []byte
		sum  string
	}{
		{checkpoint, "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696"},
		{tokenizer, "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312"},
	} {
		s := sha256.Sum256(c.data)
		require.Equal(t, c.sum, hex.EncodeToString(s[:]))
	}
	f, err := Open()
	require.NoError(t, err)
	arch, err := f.String("general.architecture")
	require.NoError(t, err)
	require.Equal(t, "llama", arch)
}
