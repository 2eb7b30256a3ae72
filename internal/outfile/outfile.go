// Package outfile writes the files a command produces so that no data is
// ever lost: every command that writes a file goes through it.
//
//	if err := outfile.Check(outputs, inputs); err != nil { ... usage error, exit 2 }
//	... the long work ...
//	err := outfile.Write(path, func(w io.Writer) error { ... })
//
// Check runs before any work: it refuses an output that is one of the inputs
// or another output (by identity, os.SameFile, so "../x", symlinks and hard
// links are caught, not only equal names), an existing output that is not a
// regular file (a device, a fifo, a directory: those are never removed or
// truncated), and an output whose directory does not exist.
//
// Write never touches the target until the new content is complete and on
// disk: it writes a temporary file in the target's directory, syncs it and
// renames it over the target; on any failure it removes only that temporary
// file and the target is as it was. A symlink target is followed, so the
// link stays and the file it names is replaced.
package outfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Named is a file and the name the user gave it (a flag, say), for messages.
type Named struct {
	Name string // e.g. "-o" or "--tokenizer"
	Path string
}

// Check refuses outputs that would lose data or cannot be written; see the
// package comment. Inputs that do not exist are skipped (their own reader
// reports them).
func Check(outputs, inputs []Named) error {
	type seen struct {
		Named
		info  os.FileInfo // nil when the output does not exist yet
		canon string      // absolute path with the directory's symlinks resolved
	}
	var outs []seen
	for _, o := range outputs {
		if o.Path == "" {
			continue
		}
		s := seen{Named: o}
		info, err := os.Stat(o.Path)
		switch {
		case err == nil:
			if !info.Mode().IsRegular() {
				return fmt.Errorf("%s %s is not a regular file (%s); name a file to create or replace", o.Name, o.Path, kind(info.Mode()))
			}
			s.info = info
		case errors.Is(err, fs.ErrNotExist):
		default:
			return fmt.Errorf("%s %s: %w", o.Name, o.Path, unwrapPath(err))
		}
		target, err := resolve(o.Path)
		if err != nil {
			return fmt.Errorf("%s %s: directory %s does not exist", o.Name, o.Path, filepath.Dir(o.Path))
		}
		if dir, err := os.Stat(filepath.Dir(target)); err != nil || !dir.IsDir() {
			return fmt.Errorf("%s %s: directory %s does not exist", o.Name, o.Path, filepath.Dir(target))
		}
		s.canon = target
		for _, in := range inputs {
			if in.Path == "" || s.info == nil {
				continue
			}
			ii, err := os.Stat(in.Path)
			if err == nil && os.SameFile(ii, s.info) {
				return sameError(o, in, "it would be overwritten")
			}
		}
		for _, prev := range outs {
			if (s.info != nil && prev.info != nil && os.SameFile(s.info, prev.info)) || s.canon == prev.canon {
				return sameError(o, prev.Named, "one would overwrite the other")
			}
		}
		outs = append(outs, s)
	}
	return nil
}

func sameError(out, other Named, loss string) error {
	if out.Path == other.Path {
		return fmt.Errorf("%s %s is also %s: %s; write to another file", out.Name, out.Path, other.Name, loss)
	}
	return fmt.Errorf("%s %s is the same file as %s %s: %s; write to another file", out.Name, out.Path, other.Name, other.Path, loss)
}

// kind names a non-regular file type.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a fifo"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a plain file"
}

// unwrapPath drops the *PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// resolve returns the absolute path Write replaces: symlinks followed when
// the target exists, else the directory's symlinks resolved.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		return p, nil
	}
	if fi, err := os.Lstat(abs); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		// A dangling symlink: write where it points.
		dest, err := os.Readlink(abs)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(abs), dest)
		}
		return resolve(dest)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", unwrapPath(err)
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}

// Write replaces (or creates) the regular file at path with what fill
// writes, atomically: the target changes only if fill and every write, sync
// and close succeed. On failure only Write's own temporary file is removed.
func Write(path string, fill func(w io.Writer) error) (err error) {
	target, err := resolve(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	perm := fs.FileMode(0o666) // less the umask, applied by the kernel
	if info, err := os.Stat(target); err == nil {
		if !info.Mode().IsRegular() {
			return fmt.Errorf("write %s: not a regular file (%s); it is left as it is", path, kind(info.Mode()))
		}
		perm = info.Mode().Perm()
	}
	tmp, f, err := createTemp(target)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
		forget(tmp)
	}()
	if err = fill(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	if err = os.Rename(tmp, target); err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	syncDir(filepath.Dir(target))
	return nil
}

// createTemp makes a new file next to target, with permissions 0666 less the
// umask (os.CreateTemp would give 0600).
func createTemp(target string) (string, *os.File, error) {
	for range 100 {
		var r [6]byte
		rand.Read(r[:])
		name := filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".tmp-"+hex.EncodeToString(r[:]))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		remember(name)
		return name, f, nil
	}
	return "", nil, errors.New("cannot create a temporary file")
}

// syncDir makes the rename durable; best effort, some file systems refuse.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Temporary files being written, so that RemoveTemporary can clean up when
// the process is interrupted.
var (
	mu   sync.Mutex
	live = map[string]bool{}
)

func remember(name string) { mu.Lock(); live[name] = true; mu.Unlock() }
func forget(name string)   { mu.Lock(); delete(live, name); mu.Unlock() }

// RemoveTemporary removes the temporary files of writes in progress; call it
// before exiting on a signal.
func RemoveTemporary() {
	mu.Lock()
	defer mu.Unlock()
	for name := range live {
		os.Remove(name)
		delete(live, name)
	}
}
