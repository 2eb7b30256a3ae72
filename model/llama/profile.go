package llama

import "github.com/freqkv/freqkv/engine"

// WithProfile runs fn with every recorder of the context profiled and
// returns GPU time per kernel.
func (c *Context) WithProfile(fn func() error) ([]engine.KernelTime, error) {
	prof, err := c.m.dev.NewProfile()
	if err != nil {
		return nil, err
	}
	defer prof.Release()
	c.profile = prof
	defer func() { c.profile = nil }()
	if err := fn(); err != nil {
		return nil, err
	}
	return prof.Sorted(), nil
}
