// Package llama2c reads Karpathy's llama2.c checkpoints (the legacy "version
// 0" format of run.c) and tokenizer.bin files, and converts them to GGUF.
package llama2c

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strings"
)

// Config is a checkpoint's header: seven int32s in this order.
type Config struct {
	Dim       int // transformer width
	HiddenDim int // feed-forward width
	Layers    int
	Heads     int // query heads
	KVHeads   int // key/value heads (fewer than Heads for grouped-query attention)
	VocabSize int
	SeqLen    int // maximum sequence length the model was trained for
	// SharedClassifier is true when the output classifier is the token
	// embedding table; the file says so with a positive vocab size.
	SharedClassifier bool
}

// HeadSize returns the width of one attention head.
func (c Config) HeadSize() int { return c.Dim / c.Heads }

// KVDim returns the width of the keys (and values) of one position.
func (c Config) KVDim() int { return c.KVHeads * c.HeadSize() }

// Validate checks that the header describes a model run.c can run.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"dim", c.Dim}, {"hidden_dim", c.HiddenDim}, {"n_layers", c.Layers}, {"n_heads", c.Heads},
		{"n_kv_heads", c.KVHeads}, {"vocab_size", c.VocabSize}, {"seq_len", c.SeqLen},
	} {
		if f.v <= 0 {
			return fmt.Errorf("llama2c: %s %d is not positive", f.name, f.v)
		}
	}
	if c.Dim%c.Heads != 0 {
		return fmt.Errorf("llama2c: n_heads %d does not divide dim %d", c.Heads, c.Dim)
	}
	if c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("llama2c: n_kv_heads %d does not divide n_heads %d", c.KVHeads, c.Heads)
	}
	if c.HeadSize()%2 != 0 {
		return fmt.Errorf("llama2c: head size %d is odd, RoPE rotates pairs", c.HeadSize())
	}
	return nil
}

// Layer holds one transformer block's weights. Matrices are row-major
// (rows, columns), y = W x.
type Layer struct {
	RMSAtt []float32 // (dim)
	WQ     []float32 // (n_heads*head_size, dim)
	WK     []float32 // (n_kv_heads*head_size, dim)
	WV     []float32 // (n_kv_heads*head_size, dim)
	WO     []float32 // (dim, n_heads*head_size)
	RMSFFN []float32 // (dim)
	W1     []float32 // (hidden_dim, dim), the gate
	W2     []float32 // (dim, hidden_dim), down
	W3     []float32 // (hidden_dim, dim), up
}

// Checkpoint is a llama2.c model.
type Checkpoint struct {
	Config
	TokenEmbedding []float32 // (vocab_size, dim)
	Layers         []Layer
	RMSFinal       []float32 // (dim)
	Classifier     []float32 // (vocab_size, dim); nil when SharedClassifier
}

const headerBytes = 7 * 4

// ReadCheckpoint reads the checkpoint file at path. It reads no more than
// the header says the model holds, so an endless or oversized file is an
// error, not a large allocation.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	data, err := readCheckpointFile(path)
	var ck *Checkpoint
	if err == nil {
		ck, err = ParseCheckpoint(data)
	}
	if err != nil {
		return nil, fmt.Errorf("llama2c: checkpoint %s: %w", path, unprefixed{err})
	}
	return ck, nil
}

// unprefixed drops the package's "llama2c: " (and an *os.PathError's
// repetition of the path) from a wrapped error, so a message names each
// thing once.
type unprefixed struct{ err error }

func (u unprefixed) Error() string {
	var pe *fs.PathError
	if errors.As(u.err, &pe) {
		return pe.Err.Error()
	}
	return strings.TrimPrefix(u.err.Error(), "llama2c: ")
}

func (u unprefixed) Unwrap() error { return u.err }

// readCheckpointFile reads a regular file of the size its header implies.
func readCheckpointFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	header := make([]byte, headerBytes)
	if n, err := io.ReadFull(f, header); err != nil {
		if n == 0 {
			return nil, errors.New("empty file")
		}
		return nil, fmt.Errorf("%d bytes is shorter than the %d-byte header", n, headerBytes)
	}
	c, err := headerConfig(header)
	if err != nil {
		return nil, err
	}
	want, err := c.floats()
	if err != nil {
		return nil, err
	}
	if uint64(info.Size()) != headerBytes+4*want {
		return nil, fmt.Errorf("header %+v implies %d bytes, file has %d", c, headerBytes+4*want, info.Size())
	}
	data := make([]byte, info.Size())
	copy(data, header)
	if _, err := io.ReadFull(f, data[headerBytes:]); err != nil {
		return nil, err
	}
	return data, nil
}

// headerConfig decodes and validates a header.
func headerConfig(data []byte) (Config, error) {
	var h [7]int32
	for i := range h {
		h[i] = int32(binary.LittleEndian.Uint32(data[4*i:]))
	}
	c := Config{
		Dim: int(h[0]), HiddenDim: int(h[1]), Layers: int(h[2]), Heads: int(h[3]),
		KVHeads: int(h[4]), VocabSize: int(h[5]), SeqLen: int(h[6]),
		SharedClassifier: h[5] > 0,
	}
	if h[5] < 0 {
		c.VocabSize = -int(h[5])
	}
	return c, c.Validate()
}

// ParseCheckpoint decodes a checkpoint. The file's length must be exactly
// what its header implies.
func ParseCheckpoint(data []byte) (*Checkpoint, error) {
	if len(data) < headerBytes {
		return nil, fmt.Errorf("llama2c: %d bytes is shorter than the %d-byte header", len(data), headerBytes)
	}
	c, err := headerConfig(data)
	if err != nil {
		return nil, err
	}
	want, err := c.floats()
	if err != nil {
		return nil, err
	}
	if have := uint64(len(data)-headerBytes) / 4; have != want || (len(data)-headerBytes)%4 != 0 {
		return nil, fmt.Errorf("llama2c: header %+v implies %d bytes, file has %d", c, headerBytes+4*want, len(data))
	}

	w := &weights{data: data[headerBytes:]}
	ck := &Checkpoint{Config: c}
	dim, hd, kv := c.Dim, c.HiddenDim, c.KVDim()
	ck.TokenEmbedding = w.next(c.VocabSize * dim)
	// run.c stores each kind of weight for all layers together.
	ck.Layers = make([]Layer, c.Layers)
	each := func(n int, set func(l *Layer, s []float32)) {
		for i := range ck.Layers {
			set(&ck.Layers[i], w.next(n))
		}
	}
	each(dim, func(l *Layer, s []float32) { l.RMSAtt = s })
	each(dim*dim, func(l *Layer, s []float32) { l.WQ = s })
	each(kv*dim, func(l *Layer, s []float32) { l.WK = s })
	each(kv*dim, func(l *Layer, s []float32) { l.WV = s })
	each(dim*dim, func(l *Layer, s []float32) { l.WO = s })
	each(dim, func(l *Layer, s []float32) { l.RMSFFN = s })
	each(hd*dim, func(l *Layer, s []float32) { l.W1 = s })
	each(dim*hd, func(l *Layer, s []float32) { l.W2 = s })
	each(hd*dim, func(l *Layer, s []float32) { l.W3 = s })
	ck.RMSFinal = w.next(dim)
	w.next(c.SeqLen * c.HeadSize()) // freq_cis_real and freq_cis_imag, unused
	if !c.SharedClassifier {
		ck.Classifier = w.next(c.VocabSize * dim)
	}
	return ck, nil
}

// maxFloats bounds the model size accepted (2^50 floats, 4 PiB), far above
// any real checkpoint and far below where the sums below could overflow.
const maxFloats = 1 << 50

// floats returns how many float32s follow the header.
func (c Config) floats() (uint64, error) {
	classifiers := 1
	if !c.SharedClassifier {
		classifiers = 2
	}
	// Estimate in float64 first: header fields are below 2^31, so this
	// cannot overflow, and it bounds the exact integer sum that follows.
	dim, hd, kv := float64(c.Dim), float64(c.HiddenDim), float64(c.KVDim())
	approx := float64(classifiers)*float64(c.VocabSize)*dim +
		float64(c.Layers)*(2*dim+2*dim*dim+2*kv*dim+3*hd*dim) + dim +
		float64(c.SeqLen)*float64(c.HeadSize())
	if approx > maxFloats {
		return 0, fmt.Errorf("llama2c: header %+v describes an impossibly large model", c)
	}
	d, h, k := uint64(c.Dim), uint64(c.HiddenDim), uint64(c.KVDim())
	perLayer := 2*d + 2*d*d + 2*k*d + 3*h*d
	return uint64(classifiers)*uint64(c.VocabSize)*d + uint64(c.Layers)*perLayer + d +
		uint64(c.SeqLen)*uint64(c.HeadSize()), nil
}

// weights hands out consecutive float32 slices of the checkpoint body; the
// caller has checked the body's length.
type weights struct {
	data []byte
	off  int
}

func (w *weights) next(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(w.data[w.off+4*i:]))
	}
	w.off += 4 * n
	return out
}
