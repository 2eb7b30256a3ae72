//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package gguf

import (
	"fmt"
	"os"
)

// Open reads the file at path into memory and parses it (this platform has
// no mmap support here).
func Open(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}
