// Package shaders holds freqkv's WGSL kernels (one kernel family per file,
// embedded at build time) and their typed Go launchers: each launcher states
// its kernel's parameters, bindings and dispatch size, and checks shapes so a
// kernel never reads or writes past a binding.
package shaders

import (
	"embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/freqkv/freqkv/engine"
)

//go:embed *.wgsl
var files embed.FS

// includeRE matches a line `#include "file.wgsl"`: WGSL has no includes,
// so Source splices shared fragments (helpers, parameter structs) into the
// kernels that use them.
var includeRE = regexp.MustCompile(`(?m)^#include "([A-Za-z0-9_.]+)"[ \t]*$`)

// expanded memoises Source: launchers ask for their file on every dispatch,
// and the embedded files never change.
var expanded sync.Map // file name -> string

// Source returns the text of one embedded shader file, with its #include
// lines replaced by the named fragments (which may include others).
func Source(name string) (string, error) {
	if s, ok := expanded.Load(name); ok {
		return s.(string), nil
	}
	s, err := source(name, map[string]bool{})
	if err != nil {
		return "", err
	}
	expanded.Store(name, s)
	return s, nil
}

func source(name string, open map[string]bool) (string, error) {
	if open[name] {
		return "", fmt.Errorf("shader %s includes itself", name)
	}
	b, err := files.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("shader %s is not embedded: %w", name, err)
	}
	open[name] = true
	defer delete(open, name)
	var firstErr error
	out := includeRE.ReplaceAllStringFunc(string(b), func(line string) string {
		inc := includeRE.FindStringSubmatch(line)[1]
		text, err := source(inc, open)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %w", name, err)
		}
		return text
	})
	return out, firstErr
}

// Files lists the embedded shader files.
func Files() []string {
	entries, _ := files.ReadDir(".")
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// Ops launches kernels on one device. Pipelines are created on first use and
// cached by the device; Prepare compiles a set ahead of the first token. The
// transforms' constant tables belong to the Ops: Release frees them.
type Ops struct {
	Dev    *engine.Device
	tables dctTables
	knobs  dctKnobs
	// StorageX makes every matrix product read x through a storage binding,
	// as before uniform-x decode kernels existed (side-by-side benchmarks).
	StorageX bool
}

// New returns the launchers for a device.
func New(dev *engine.Device) *Ops { return &Ops{Dev: dev} }

// Release frees the device memory the Ops holds (the transforms' tables). The Ops stays
// usable: a later transform uploads its table again.
func (o *Ops) Release() { o.tables.release() }

func (o *Ops) kernel(file, entry string, c engine.Constants) (*engine.Kernel, error) {
	// A step looks its kernels up hundreds of times: the #unroll expansion
	// (regular expressions over the source) is for the first use only.
	if k, ok := o.Dev.CachedKernel(file, entry, c); ok {
		return k, nil
	}
	src, err := Source(file)
	if err != nil {
		return nil, err
	}
	if src, err = unroll(src, c); err != nil {
		return nil, fmt.Errorf("shader %s: %w", file, err)
	}
	return o.Dev.Kernel(file, src, entry, c)
}

// unrollRE matches an innermost block `#unroll NAME COUNT` ... `#end NAME` (each on a line
// of its own; WGSL has no other '#', so the body is what holds none). Blocks nest: the inner
// ones are written out first.
var unrollRE = regexp.MustCompile(`(?ms)^[ \t]*#unroll ([A-Za-z_][A-Za-z0-9_]*) ([A-Z_][A-Z0-9_]*)[ \t]*\n([^#]*)^[ \t]*#end ([A-Za-z_][A-Za-z0-9_]*)[ \t]*(?:\n|\z)`)

// unroll writes out each #unroll block COUNT times, NAME replaced by 0u, 1u, ...: COUNT is
// one of the kernel's constants. Mesa's NIR unrolls only loops below an instruction budget,
// and llvmpipe keeps a private array indexed by a loop counter in memory, reached through
// per-lane loops; a register tile whose row loop is written out stays in registers.
func unroll(src string, c engine.Constants) (string, error) {
	for unrollRE.MatchString(src) {
		var err error
		if src, err = unrollOnce(src, c); err != nil {
			return "", err
		}
	}
	return src, nil
}

// unrollOnce writes out the innermost #unroll blocks.
func unrollOnce(src string, c engine.Constants) (string, error) {
	var firstErr error
	out := unrollRE.ReplaceAllStringFunc(src, func(block string) string {
		m := unrollRE.FindStringSubmatch(block)
		name, count, body := m[1], m[2], m[3]
		if m[4] != name {
			if firstErr == nil {
				firstErr = fmt.Errorf("#unroll %s ends with #end %s", name, m[4])
			}
			return ""
		}
		n, err := strconv.Atoi(strings.TrimSuffix(c[count], "u"))
		if err != nil || n < 0 || n > 1024 {
			if firstErr == nil {
				firstErr = fmt.Errorf("#unroll %s %s: the count must be a constant from 0 to 1024, got %q", name, count, c[count])
			}
			return ""
		}
		ident := regexp.MustCompile(`\b` + name + `\b`)
		var b strings.Builder
		for i := range n {
			b.WriteString(ident.ReplaceAllString(body, strconv.Itoa(i)+"u"))
		}
		return b.String()
	})
	return out, firstErr
}

func u(v int) string { return strconv.Itoa(v) + "u" }
