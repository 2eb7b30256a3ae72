package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/freqkv/freqkv/kvcache"
	"github.com/stretchr/testify/require"
)

// Every cache parameter has the flag its errors are reported with.
func TestEveryCacheParamHasAFlag(t *testing.T) {
	for _, p := range kvcache.Params() {
		require.NotEmpty(t, paramFlags[p], "kvcache.%s has no flag", p)
	}
}

// Only cmd/ speaks in flags: no string literal in a library names one, so a library's
// error can never advise a flag that the command at hand lacks.
func TestLibrariesNameNoFlags(t *testing.T) {
	flag := regexp.MustCompile(`(^|[\s("'/])--[a-z][a-z0-9-]+`)
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "cmd" || (rel != "." && strings.HasPrefix(d.Name(), ".")) || d.Name() == "testdata" || d.Name() == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && flag.MatchString(lit.Value) {
				t.Errorf("%s: %s names a CLI flag", rel, lit.Value)
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
}
