//go:build linux || darwin || freebsd || netbsd || openbsd

package synth

import "syscall"

// zeros returns n zero bytes that cost no memory while they are not written to: an
// anonymous read-only mapping outside the Go heap. release unmaps it.
func zeros(n int) (b []byte, release func(), err error) {
	if n == 0 {
		return nil, func() {}, nil
	}
	b, err = syscall.Mmap(-1, 0, n, syscall.PROT_READ, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { syscall.Munmap(b) }, nil
}
