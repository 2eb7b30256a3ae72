package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
)

// stdout is where every command writes its results: buffered, with the
// first write error kept, so that run reports a full disk (> /dev/full) or a
// closed stdout (>&-) as one line and exit status 1 instead of exiting 0
// with the output lost. Commands that stream (generate, perplexity,
// vectors) call flush after each unit of output.
var stdout = newCheckedWriter(os.Stdout)

type checkedWriter struct {
	w   *bufio.Writer
	err error
}

func newCheckedWriter(f *os.File) *checkedWriter {
	c := &checkedWriter{w: bufio.NewWriterSize(f, 64<<10)}
	if stdoutWasClosed(f) {
		c.err = errors.New("stdout is closed")
	}
	return c
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// flush writes out what is buffered and returns the first write error.
func (c *checkedWriter) flush() error {
	if c.err == nil {
		if err := c.w.Flush(); err != nil {
			c.err = err
		}
	}
	if c.err != nil {
		return fmt.Errorf("writing to stdout: %w", unwrapPath(c.err))
	}
	return nil
}
