package llama

import "github.com/freqkv/freqkv/kvcache"

// SaveState reads the context's cache back (rows and bookkeeping), to
// resume the sequence later with LoadState.
func (c *Context) SaveState() (*kvcache.State, error) { return kvcache.SaveState(c.Cache) }

// LoadState puts a saved cache state into the context, whose cache must
// have been made with the same Spec for the same model.
func (c *Context) LoadState(st *kvcache.State) error {
	if err := kvcache.LoadState(c.Cache, st); err != nil {
		return err
	}
	c.tokens = st.Tokens
	return nil
}
