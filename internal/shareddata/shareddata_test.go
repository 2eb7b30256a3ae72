package shareddata

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRepoRootHoldsGoMod(t *testing.T) {
	root, err := repoRoot()
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(root, "go.mod"))
	assert.FileExists(t, filepath.Join(root, "internal", "shareddata", "shareddata.go"))
}

func TestRelativeEnvIsResolvedAgainstRoot(t *testing.T) {
	root, err := repoRoot()
	require.NoError(t, err)
	t.Setenv(EnvVar, "internal")
	dir, err := resolve()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, "internal"), dir)
}

func TestAbsoluteEnvIsUsedAsIs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv(EnvVar, tmp)
	assert.Equal(t, tmp, Dir(t))
}

func TestMissingDirectoryIsAnError(t *testing.T) {
	t.Setenv(EnvVar, filepath.Join(t.TempDir(), "absent"))
	_, err := resolve()
	assert.Error(t, err)
}

func TestFileIsNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o600))
	t.Setenv(EnvVar, f)
	_, err := resolve()
	assert.ErrorContains(t, err, "not a directory")
}

func TestPathFindsFile(t *testing.T) {
	tmp := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(tmp, "models"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "models", "x.bin"), []byte{1}, 0o600))
	t.Setenv(EnvVar, tmp)
	assert.Equal(t, filepath.Join(tmp, "models", "x.bin"), Path(t, "models/x.bin"))
}

// The shared directory itself must be found where the project lays it out.
func TestSharedDataPresent(t *testing.T) {
	dir := Dir(t)
	assert.FileExists(t, filepath.Join(dir, "README.md"))
}

// recordingTB stands in for a test so that skip and fail can be observed.
type recordingTB struct {
	testing.TB
	skipped, failed bool
}

func (r *recordingTB) Helper()               {}
func (r *recordingTB) Skipf(string, ...any)  { r.skipped = true }
func (r *recordingTB) Fatalf(string, ...any) { r.failed = true }

func TestMissingDataSkipsOutsideCI(t *testing.T) {
	t.Setenv(EnvVar, filepath.Join(t.TempDir(), "absent"))
	t.Setenv("CI", "")
	r := &recordingTB{TB: t}
	Dir(r)
	assert.True(t, r.skipped)
	assert.False(t, r.failed)
}

func TestMissingDataFailsInCI(t *testing.T) {
	t.Setenv(EnvVar, filepath.Join(t.TempDir(), "absent"))
	t.Setenv("CI", "true")
	r := &recordingTB{TB: t}
	Dir(r)
	assert.True(t, r.failed)
	assert.False(t, r.skipped)
}

func TestMissingFileFailsInCI(t *testing.T) {
	t.Setenv(EnvVar, t.TempDir())
	t.Setenv("CI", "true")
	r := &recordingTB{TB: t}
	Path(r, "no/such/file")
	assert.True(t, r.failed)
}
