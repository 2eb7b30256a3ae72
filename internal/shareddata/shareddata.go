// Package shareddata locates the project's shared reference data (models,
// vocabularies, texts) for tests.
//
// The data lives outside the repository. Its directory is taken from the
// environment variable FREQKV_TESTDATA; a relative value, and the default
// "../shared", are resolved against the repository root (the directory that
// holds go.mod). Where the data is absent a test is skipped, except in CI
// (CI=true), where missing data is a failure.
package shareddata

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// EnvVar names the environment variable that points at the shared data.
const EnvVar = "FREQKV_TESTDATA"

// Dir returns the shared data directory, or skips (fails under CI=true) t
// when it cannot be found.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := resolve()
	if err != nil {
		missing(t, err)
		return ""
	}
	return dir
}

// Path returns the file or directory rel inside the shared data directory,
// skipping (failing under CI=true) when it does not exist.
func Path(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Dir(t), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		missing(t, fmt.Errorf("shared test data %s: %w", rel, err))
		return ""
	}
	return p
}

func missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v (CI=true: shared test data is required; set %s)", err, EnvVar)
		return
	}
	t.Skipf("skipping: %v (set %s to the shared data directory)", err, EnvVar)
}

func resolve() (string, error) {
	dir := os.Getenv(EnvVar)
	if dir == "" {
		dir = filepath.Join("..", "shared")
	}
	if !filepath.IsAbs(dir) {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, dir)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("shared test data directory: %w", err)
	}
	if !info.IsDir() {
		return "", fmt.Errorf("shared test data %s is not a directory", dir)
	}
	return dir, nil
}

// repoRoot walks up from the working directory (a test runs in its package
// directory) to the first directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}
