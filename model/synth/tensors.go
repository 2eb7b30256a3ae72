package synth

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/freqkv/freqkv/model/ggml"
)

// kind says how a tensor's values are drawn.
type kind int

const (
	matrix       kind = iota // uniform, standard deviation 1/sqrt(row length)
	norm                     // uniform in 1 ± 0.25
	bias                     // uniform in ±0.5
	llama3                   // rope_freqs.weight: Llama 3's per-pair factors, not drawn
	longFactors              // rope_factors_long.weight: phi3's, made up
	shortFactors             // rope_factors_short.weight
)

// tensor describes one tensor of the file; its values are drawn when it is written.
type tensor struct {
	name string
	dims []uint64 // GGUF order: dims[0] is the row length
	typ  ggml.Type
	kind kind
}

func (t tensor) rowLen() int { return int(t.dims[0]) }

func (t tensor) rows() int {
	if len(t.dims) == 1 {
		return 1
	}
	return int(t.dims[1])
}

func (t tensor) bytes() uint64 {
	n, _ := ggml.RowBytes(t.typ, t.rowLen()) // Validate made the rows whole blocks
	return uint64(n) * uint64(t.rows())
}

// layout lists the tensors of s in file order, with llama.cpp's names and shapes.
func layout(s Spec) []tensor {
	hd := uint64(s.headDim())
	kvDim, qDim := hd*uint64(s.KVHeads), hd*uint64(s.Heads)
	dim, ffn, vocab := uint64(s.Dim), uint64(s.FFN), uint64(s.Vocab)
	mat := func(name string, cols, rows uint64) tensor {
		return tensor{name: name, dims: []uint64{cols, rows}, typ: s.WeightType, kind: matrix}
	}
	vec := func(name string, n uint64, k kind) tensor {
		return tensor{name: name, dims: []uint64{n}, typ: ggml.F32, kind: k}
	}

	var ts []tensor
	if s.Llama3 != nil { // llama.cpp's converter yields it before the model's tensors
		ts = append(ts, vec("rope_freqs.weight", hd/2, llama3))
	}
	if s.LongRope != nil {
		ts = append(ts, vec("rope_factors_long.weight", hd/2, longFactors), vec("rope_factors_short.weight", hd/2, shortFactors))
	}
	ts = append(ts, mat("token_embd.weight", dim, vocab))
	for l := range s.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts, vec(p+"attn_norm.weight", dim, norm))
		if s.Arch == "phi3" {
			ts = append(ts, mat(p+"attn_qkv.weight", dim, qDim+2*kvDim))
		} else {
			ts = append(ts,
				mat(p+"attn_q.weight", dim, qDim),
				mat(p+"attn_k.weight", dim, kvDim),
				mat(p+"attn_v.weight", dim, kvDim))
		}
		if s.Arch == "qwen2" {
			ts = append(ts,
				vec(p+"attn_q.bias", qDim, bias),
				vec(p+"attn_k.bias", kvDim, bias),
				vec(p+"attn_v.bias", kvDim, bias))
		}
		if s.Arch == "qwen3" || s.Arch == "gemma3" {
			ts = append(ts,
				vec(p+"attn_q_norm.weight", hd, norm),
				vec(p+"attn_k_norm.weight", hd, norm))
		}
		ts = append(ts, mat(p+"attn_output.weight", qDim, dim))
		if s.Arch == "gemma2" || s.Arch == "gemma3" { // the converter has added 1 to every Gemma norm: these are the final weights
			ts = append(ts, vec(p+"post_attention_norm.weight", dim, norm))
		}
		ts = append(ts, vec(p+"ffn_norm.weight", dim, norm))
		if s.Arch == "phi3" {
			ts = append(ts, mat(p+"ffn_down.weight", ffn, dim), mat(p+"ffn_up.weight", dim, 2*ffn))
		} else {
			ts = append(ts,
				mat(p+"ffn_gate.weight", dim, ffn),
				mat(p+"ffn_down.weight", ffn, dim),
				mat(p+"ffn_up.weight", dim, ffn))
		}
		if s.Arch == "gemma2" || s.Arch == "gemma3" {
			ts = append(ts, vec(p+"post_ffw_norm.weight", dim, norm))
		}
	}
	ts = append(ts, vec("output_norm.weight", dim, norm))
	if !s.Tied {
		ts = append(ts, mat("output.weight", dim, vocab))
	}
	return ts
}

// chunkElems bounds the values drawn and encoded as one block of rows.
const chunkElems = 1 << 18

// write draws t's values and writes them encoded as t.typ. The rows are cut into blocks of
// about chunkElems values, each drawn from its own stream (a function of s.Seed, t's name and
// the block's index, whatever the number of workers); a batch of blocks is drawn in parallel,
// then written in order.
func (t tensor) write(w io.Writer, s Spec) error {
	rowLen, rows := t.rowLen(), t.rows()
	perChunk := max(1, chunkElems/rowLen)
	chunks := (rows + perChunk - 1) / perChunk
	workers := runtime.GOMAXPROCS(0)
	encoded := make([][]byte, workers)
	errs := make([]error, workers)
	for first := 0; first < chunks; first += workers {
		batch := min(workers, chunks-first)
		var wg sync.WaitGroup
		for i := range batch {
			wg.Go(func() {
				c := first + i
				n := min(perChunk, rows-c*perChunk)
				encoded[i], errs[i] = t.chunk(s, c, n*rowLen)
			})
		}
		wg.Wait()
		for i := range batch {
			if errs[i] != nil {
				return errs[i]
			}
			if _, err := w.Write(encoded[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// chunk draws the n values of block c of t and encodes them.
func (t tensor) chunk(s Spec, c, n int) ([]byte, error) {
	if t.kind == llama3 {
		return ggml.Quantize(t.typ, llama3Factors(s))
	}
	if t.kind == longFactors || t.kind == shortFactors {
		f := make([]float32, n)
		for i := range f {
			x := float64(i) / float64(max(1, n-1)) // 0 for the fastest pair, 1 for the slowest
			if t.kind == longFactors {
				f[i] = float32(1 + 7*x*x)
			} else {
				f[i] = float32(1 + 0.5*x)
			}
		}
		return ggml.Quantize(t.typ, f)
	}
	rng := rand.New(rand.NewPCG(s.Seed, nameHash(t.name)+uint64(c)*0x9e3779b97f4a7c15))
	lo, hi := t.bounds()
	if !t.typ.CanQuantize() {
		return kBlocks(rng, t.typ, n, hi), nil
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return ggml.Quantize(t.typ, x)
}

// bounds is the interval t's values are drawn from, uniformly.
func (t tensor) bounds() (lo, hi float64) {
	switch t.kind {
	case norm:
		return 0.75, 1.25
	case bias:
		return -0.5, 0.5
	default: // uniform in ±a has standard deviation a/sqrt(3)
		a := math.Sqrt(3 / float64(t.rowLen()))
		return -a, a
	}
}

func nameHash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// llama3Factors are the rope factors llama.cpp's converter computes for a rope_scaling of
// type "llama3" (Hugging Face's _compute_llama3_parameters, as divisors): pairs whose
// wavelength is below OrigContext/HighFreqFactor keep their frequency (1), those above
// OrigContext/LowFreqFactor are slowed by Factor, and those between are interpolated.
func llama3Factors(s Spec) []float32 {
	r, hd := s.Llama3, s.headDim()
	lowWavelen := float64(r.OrigContext) / r.LowFreqFactor
	highWavelen := float64(r.OrigContext) / r.HighFreqFactor
	out := make([]float32, hd/2)
	for i := range out {
		freq := 1 / math.Pow(s.RopeBase, float64(2*i)/float64(hd))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			out[i] = 1
		case wavelen > lowWavelen:
			out[i] = float32(r.Factor)
		default:
			smooth := (float64(r.OrigContext)/wavelen - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
			out[i] = float32(1 / ((1-smooth)/r.Factor + smooth))
		}
	}
	return out
}

// kBlocks returns n values' worth of random blocks of a type without a quantiser here (every
// byte pattern is a block) whose values lie within about ±a: random quants, scales and mins,
// with the f16 multipliers chosen so that the largest product is near a.
func kBlocks(rng *rand.Rand, t ggml.Type, n int, a float64) []byte {
	bb := t.BlockBytes()
	out := make([]byte, n/t.BlockSize()*bb)
	for i := range out {
		out[i] = byte(rng.Uint32())
	}
	f16 := func(b []byte, v float64) { binary.LittleEndian.PutUint16(b, ggml.F32ToF16(float32(v))) }
	for b := 0; b < len(out); b += bb {
		blk := out[b : b+bb]
		jitter := 0.5 + 0.5*rng.Float64()
		switch t {
		case ggml.Q4_K: // d*scale*q - dmin*min, scale and min < 64, q < 16
			f16(blk, 2*a*jitter/(63*15))
			f16(blk[2:], a*jitter/63)
		case ggml.Q5_K: // q < 32
			f16(blk, 2*a*jitter/(63*31))
			f16(blk[2:], a*jitter/63)
		case ggml.Q6_K: // d*scale*(q-32), |scale| <= 128, |q-32| <= 32
			f16(blk[208:], a*jitter/(128*32))
		case ggml.Q5_0: // d*(q-16), q < 32
			f16(blk, a*jitter/16)
		case ggml.Q5_1: // d*q + m, q < 32
			f16(blk, 2*a*jitter/31)
			f16(blk[2:], -a*jitter)
		case ggml.IQ4_NL: // d*grid, |grid| <= 127
			f16(blk, a*jitter/127)
		}
	}
	return out
}
