package llama

import "github.com/freqkv/freqkv/engine"

// qkNorm records qwen3's per-head RMS norms of the chunk's queries and keys
// (into qn and kn, which attention and the cache then read); nothing for
// architectures without them. Keys are cached normalised, before RoPE.
func (c *Context) qkNorm(rec *engine.Recorder, l layer, t int) error {
	h := c.m.H
	if !h.QKNorm {
		return nil
	}
	eps := float32(h.RMSEps)
	if err := c.ops.RMSNorm(rec, c.q, l.qNorm, c.qn, t*h.Heads, h.HeadDim(), eps); err != nil {
		return err
	}
	return c.ops.RMSNorm(rec, c.k, l.kNorm, c.kn, t*h.KVHeads, h.HeadDim(), eps)
}
