//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package synth

// zeros returns n zero bytes; release lets them go.
func zeros(n int) (b []byte, release func(), err error) {
	return make([]byte, n), func() {}, nil
}
