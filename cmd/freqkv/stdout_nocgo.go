//go:build !(cgo && unix)

package main

import "os"

// stdoutWasClosed cannot tell without cgo (see stdout_cgo.go).
func stdoutWasClosed(*os.File) bool { return false }
