// Package gputest opens the shared test device: tests skip without an
// adapter, except under CI=true, where a missing adapter is a failure.
package gputest

import (
	"os"
	"sync"
	"testing"

	"github.com/freqkv/freqkv/engine"
)

var (
	once sync.Once
	dev  *engine.Device
	err  error
)

// Device returns one device shared by all tests of the package.
func Device(t testing.TB) *engine.Device {
	t.Helper()
	once.Do(func() { dev, err = engine.Open(engine.Options{}) })
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no GPU device in CI: %v", err)
		}
		t.Skipf("no GPU device: %v", err)
	}
	return dev
}
