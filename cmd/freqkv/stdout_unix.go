//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// stdoutWasClosed reports whether f (stdout) was closed when the process
// started: the Go runtime then opens /dev/null on it read-write, which a
// shell redirection (> /dev/null) never does, so writes would vanish
// without an error.
func stdoutWasClosed(f *os.File) bool {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_ACCMODE != unix.O_RDWR {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}
