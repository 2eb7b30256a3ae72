package outfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckSameFileByEveryPathForm(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "model.bin")
	require.NoError(t, os.WriteFile(in, []byte("weights"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.Symlink(in, filepath.Join(dir, "link")))
	require.NoError(t, os.Link(in, filepath.Join(dir, "hard")))
	require.NoError(t, os.Symlink(dir, filepath.Join(dir, "dirlink")))
	inputs := []Named{{"-m", in}}
	for _, out := range []string{
		in,
		filepath.Join(dir, "sub", "..", "model.bin"),
		filepath.Join(dir, "link"),
		filepath.Join(dir, "hard"),
		filepath.Join(dir, "dirlink", "model.bin"),
		filepath.Join(dir, ".", "model.bin"),
	} {
		err := Check([]Named{{"-o", out}}, inputs)
		require.Error(t, err, out)
		require.Contains(t, err.Error(), "overwritten", out)
	}
	// Two outputs naming one new file.
	err := Check([]Named{{"-o", filepath.Join(dir, "s.png")}, {"--csv", filepath.Join(dir, "sub", "..", "s.png")}}, inputs)
	require.ErrorContains(t, err, "one would overwrite the other")
	require.NoError(t, Check([]Named{{"-o", filepath.Join(dir, "new.gguf")}, {"--csv", filepath.Join(dir, "x.csv")}}, inputs))
	require.ErrorContains(t, Check([]Named{{"-o", filepath.Join(dir, "nodir", "x")}}, inputs), "does not exist")
}

func TestCheckRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	require.ErrorContains(t, Check([]Named{{"-o", fifo}}, nil), "a fifo")
	require.ErrorContains(t, Check([]Named{{"-o", dir}}, nil), "a directory")
	require.ErrorContains(t, Check([]Named{{"-o", "/dev/null"}}, nil), "character device")
	// Write refuses too, and leaves the fifo in place.
	require.Error(t, Write(fifo, func(w io.Writer) error { return nil }))
	fi, err := os.Lstat(fifo)
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&os.ModeNamedPipe)
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "out.gguf")
	require.NoError(t, os.WriteFile(target, []byte("old"), 0o640))

	// A failure leaves the target and no temporary file.
	boom := errors.New("boom")
	err := Write(target, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	})
	require.ErrorIs(t, err, boom)
	b, _ := os.ReadFile(target)
	require.Equal(t, "old", string(b))
	entries, _ := os.ReadDir(dir)
	require.Len(t, entries, 1, "temporary file left behind")

	// Success replaces it, keeping its permissions.
	require.NoError(t, Write(target, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }))
	b, _ = os.ReadFile(target)
	require.Equal(t, "new", string(b))
	fi, _ := os.Stat(target)
	require.Equal(t, os.FileMode(0o640), fi.Mode().Perm())

	// Through a symlink: the file it names is replaced, the link stays.
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(target, link))
	require.NoError(t, Write(link, func(w io.Writer) error { _, err := w.Write([]byte("via link")); return err }))
	fi, _ = os.Lstat(link)
	require.NotZero(t, fi.Mode()&os.ModeSymlink)
	b, _ = os.ReadFile(target)
	require.Equal(t, "via link", string(b))
}
