package llama

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/kvcache"
	"github.com/freqkv/freqkv/shaders"
)

func (c *Context) checkTokens(tokens []int32) error {
	for i, t := range tokens {
		if t < 0 || int(t) >= c.m.H.Vocab {
			return fmt.Errorf("token %d at position %d is out of range: the vocabulary has %d tokens", t, i, c.m.H.Vocab)
		}
	}
	return nil
}

func u32bytes(v []int32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

// chunkFn records extra work after a chunk's forward pass (off = index of
// the chunk's first token in the caller's slice, n = its length).
type chunkFn func(rec *engine.Recorder, off, n int) error

// feed runs tokens through the model in chunks the cache policy allows,
// one submit per chunk. after, if set, records work after each chunk.
func (c *Context) feed(tokens []int32, allLogits bool, after chunkFn) (*engine.Recorder, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("no tokens to evaluate")
	}
	if err := c.checkTokens(tokens); err != nil {
		return nil, err
	}
	if room := c.Cache.Room(); len(tokens) > room {
		return nil, fmt.Errorf("%w: %d new tokens after %d do not fit the %v cache of %d tokens, which has room for %d more",
			kvcache.ErrContextFull, len(tokens), c.tokens, c.Cache.Spec().Kind, c.Cache.Spec().Size, room)
	}
	var rec *engine.Recorder
	for off := 0; off < len(tokens); {
		rec = c.m.dev.NewRecorder()
		rec.Profile = c.profile
		n, err := c.Cache.Next(rec, min(len(tokens)-off, c.chunk))
		if err != nil {
			return nil, fmt.Errorf("after %d tokens: %w", c.tokens, err)
		}
		n = min(n, c.chunk, len(tokens)-off)
		if err := c.ids.Buf.Write(c.ids.Offset, u32bytes(tokens[off:off+n])); err != nil {
			return nil, err
		}
		if err := c.record(rec, n, allLogits); err != nil {
			return nil, err
		}
		c.Cache.Commit(n)
		c.tokens += n
		if after != nil {
			if err := after(rec, off, n); err != nil {
				return nil, err
			}
		}
		off += n
		if off < len(tokens) {
			// Wait for each chunk before recording the next, so a long
			// prefill is a sequence of bounded submits rather than a queue
			// of them; it costs one short bubble per chunk.
			if err := rec.SubmitAndWait(); err != nil {
				return nil, err
			}
		}
	}
	return rec, nil
}

// LastDispatches is the compute dispatches of the last greedy Next's submit
// (benchmarks count them per decode step).
func (c *Context) LastDispatches() int { return c.lastDispatches }

// Prefill feeds tokens and leaves the last token's logits on the device.
func (c *Context) Prefill(tokens []int32) error {
	rec, err := c.feed(tokens, false, nil)
	if err != nil {
		return err
	}
	return rec.SubmitAndWait()
}

// Next feeds tokens (the prompt, or the last sampled token) and returns the
// sampled next token. history is every token so far (for penalties).
func (c *Context) Next(tokens []int32, s *Sampler, history []int32) (int32, error) {
	rec, err := c.feed(tokens, false, nil)
	if err != nil {
		return 0, err
	}
	vocab := c.m.H.Vocab
	if s.Greedy() {
		if err := c.ops.Argmax(rec, c.logits, c.argmax, vocab); err != nil {
			return 0, err
		}
		c.lastDispatches = rec.Dispatches
		rb := rec.ReadBack(c.argmax.Buf, c.argmax.Offset, 4)
		if err := rec.SubmitAndWait(); err != nil {
			return 0, err
		}
		id := rb.Uint32s()[0]
		if id == shaders.ArgmaxNonFinite {
			return 0, ErrNonFinite
		}
		return int32(id), nil
	}
	rb := rec.ReadBack(c.logits.Buf, c.logits.Offset, uint64(4*vocab))
	if err := rec.SubmitAndWait(); err != nil {
		return 0, err
	}
	logits := rb.Float32s()
	for _, x := range logits {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return 0, ErrNonFinite
		}
	}
	return s.Sample(logits, history), nil
}

// ErrNonFinite says the logits held NaN or Inf: the weights, or the
// activations they produced, are not finite numbers.
var ErrNonFinite = errors.New("non-finite logits (NaN or Inf): the model's weights or activations are not finite numbers")

// Logits feeds tokens and returns the last token's logits.
func (c *Context) Logits(tokens []int32) ([]float32, error) {
	rec, err := c.feed(tokens, false, nil)
	if err != nil {
		return nil, err
	}
	rb := rec.ReadBack(c.logits.Buf, c.logits.Offset, uint64(4*c.m.H.Vocab))
	if err := rec.SubmitAndWait(); err != nil {
		return nil, err
	}
	return rb.Float32s(), nil
}

// AllLogits feeds tokens and returns every token's logits (the context
// must be created with Logits: true). For tests and small vocabularies.
func (c *Context) AllLogits(tokens []int32) ([][]float32, error) {
	if !c.opts.Logits {
		return nil, fmt.Errorf("context was created without per-token logits")
	}
	vocab := c.m.H.Vocab
	var reads []*engine.Readback
	rec, err := c.feed(tokens, true, func(rec *engine.Recorder, off, n int) error {
		reads = append(reads, rec.ReadBack(c.logits.Buf, c.logits.Offset, uint64(4*n*vocab)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := rec.SubmitAndWait(); err != nil {
		return nil, err
	}
	out := make([][]float32, 0, len(tokens))
	for _, rb := range reads {
		f := rb.Float32s()
		for r := 0; r+vocab <= len(f); r += vocab {
			out = append(out, f[r:r+vocab])
		}
	}
	return out, nil
}

// NLL feeds tokens and returns, for each position i, the negative
// log-likelihood of targets[i] (normally tokens[i+1]); computed on the GPU so
// only one float per token is read back.
func (c *Context) NLL(tokens, targets []int32) ([]float64, error) {
	if !c.opts.Logits {
		return nil, fmt.Errorf("context was created without per-token logits")
	}
	if len(targets) != len(tokens) {
		return nil, fmt.Errorf("%d targets for %d tokens", len(targets), len(tokens))
	}
	if err := c.checkTokens(targets); err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	var reads []*engine.Readback
	rec, err := c.feed(tokens, true, func(rec *engine.Recorder, off, n int) error {
		if err := c.targets.Buf.Write(c.targets.Offset, u32bytes(targets[off:off+n])); err != nil {
			return err
		}
		if err := c.ops.NLL(rec, c.logits, c.targets, c.nll, n, c.m.H.Vocab); err != nil {
			return err
		}
		reads = append(reads, rec.ReadBack(c.nll.Buf, c.nll.Offset, uint64(4*n)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := rec.SubmitAndWait(); err != nil {
		return nil, err
	}
	out := make([]float64, 0, len(tokens))
	for _, rb := range reads {
		for _, x := range rb.Float32s() {
			out = append(out, float64(x))
		}
	}
	return out, nil
}
