//go:build cgo && unix

package main

/*
#include <fcntl.h>

// Set before the Go runtime starts (a constructor runs first), because the
// runtime then opens /dev/null on a closed stdout, after which nothing
// tells `freqkv ... >&-` apart from a stdout sent to /dev/null on purpose.
static int stdout_closed_at_start;

__attribute__((constructor)) static void freqkv_check_stdout(void) {
	stdout_closed_at_start = fcntl(1, F_GETFD) < 0;
}

static int freqkv_stdout_closed(void) { return stdout_closed_at_start; }
*/
import "C"

import "os"

// stdoutWasClosed reports whether stdout (fd 1) was closed when the process
// started: writes would then vanish into the /dev/null the runtime put there.
func stdoutWasClosed(f *os.File) bool { return f.Fd() == 1 && C.freqkv_stdout_closed() != 0 }
