package shaders

import (
	"fmt"
	"math"
	"strconv"

	"github.com/freqkv/freqkv/engine"
)

const (
	attentionWG = 32
	// attentionChunk is the keys per softmax/values chunk (split-K): enough
	// chunks to spread one decode query over the cores, and few enough that
	// the merge stays small. The vec4 kernel's values invocations cover a
	// chunk for a whole KV head, so it takes smaller chunks.
	attentionChunk     = 256
	attentionChunkVec4 = 128
	// attentionBudget bounds the scratch (f32 elements) of one query chunk;
	// long prefills run in several chunks instead of holding every score.
	attentionBudget = 1 << 22
	// attentionKRBudget bounds the scratch (f32 elements) of the keys a prefill
	// call rotates once (attention_vec4.wgsl's krope); a cache whose visible rows
	// need more rotates them per query, as decode does.
	attentionKRBudget = 1 << 23
)

// AttentionParams describes one layer's attention of T queries over a KV
// cache holding keys before RoPE (see attention.wgsl for the rules).
type AttentionParams struct {
	T, Heads, KVHeads, HeadDim, RopeDim int
	NeoX                                bool // split-half rotary pairs instead of GGUF 'llama' adjacent pairs
	Rows                                int  // logical cache rows before this chunk; the chunk's K/V are already stored at logical rows Rows..Rows+T-1
	Sink                                int  // rows [0,Sink) always visible (0 is fine)
	Window                              int  // 0: no window. Else query t (logical row r=Rows+t) sees sinks plus logical rows [lo, r], lo = max(Sink, r-Window+1)
	Cap                                 int  // physical rows of the cache tensors; slot(j) as in StoreKV
	Scale                               float32
	// Softcap, if positive, caps every scaled score s as Softcap*tanh(s/Softcap)
	// before the softmax (Gemma 2's attention-logit softcapping); 0 leaves scores as they are.
	Softcap float32
	// RotatePerQuery keeps a prefill call rotating every key for every query, where it
	// would rotate them once (benchmarks compare the two).
	RotatePerQuery bool
}

// Positions: with no window, key j has position j and query t has position
// Rows+t; with a window, sink j has position j, key j >= lo has position
// Sink+(j-lo), and the query has position Sink+(r-lo). In both cases the
// visible keys of a query have positions 0..n-1 and the query n-1.

// visible is the number of keys query t sees (its position is one less).
func (p AttentionParams) visible(t int) int {
	r1 := p.Rows + t + 1
	lo := p.Sink
	if p.Window > 0 {
		lo = max(p.Sink, r1-p.Window)
	}
	return min(p.Sink, r1) + max(0, r1-lo)
}

func (p AttentionParams) check() error {
	switch {
	case p.T < 1 || p.Heads < 1 || p.KVHeads < 1:
		return fmt.Errorf("T = %d, Heads = %d, KVHeads = %d: want at least 1 of each", p.T, p.Heads, p.KVHeads)
	case p.Heads%p.KVHeads != 0:
		return fmt.Errorf("%d KV heads don't divide %d heads", p.KVHeads, p.Heads)
	case p.HeadDim < 2 || p.HeadDim%2 != 0:
		return fmt.Errorf("head dim %d must be even and at least 2", p.HeadDim)
	case p.Rows < 0 || p.Sink < 0 || p.Window < 0 || p.Cap < 1 || p.Sink > p.Cap:
		return fmt.Errorf("Rows = %d, Sink = %d, Window = %d, Cap = %d: want Rows, Sink, Window >= 0 and 1 <= Cap, Sink <= Cap", p.Rows, p.Sink, p.Window, p.Cap)
	case math.IsNaN(float64(p.Scale)) || math.IsInf(float64(p.Scale), 0):
		return fmt.Errorf("scale %g is not finite", p.Scale)
	case !(p.Softcap >= 0) || math.IsInf(float64(p.Softcap), 0):
		return fmt.Errorf("softcap %g is not a finite non-negative number", p.Softcap)
	}
	if err := checkRope("attention", p.HeadDim, p.RopeDim, 2, 1); err != nil {
		return err
	}
	// Every row a query sees must still be in the cache: without wrapping,
	// all of them are; in a ring, the oldest window row of the first query
	// must not have been overwritten by the chunk's newest row.
	end := p.Rows + p.T
	if end > p.Cap && (p.Window == 0 || p.Window+p.T-1 > p.Cap-p.Sink) {
		if p.Window == 0 {
			return fmt.Errorf("rows %d..%d don't fit %d cache rows and there is no window", p.Rows, end-1, p.Cap)
		}
		return fmt.Errorf("a window of %d rows and a chunk of %d need %d ring slots past the %d sinks, the cache has %d (Cap %d)", p.Window, p.T, p.Window+p.T-1, p.Sink, p.Cap-p.Sink, p.Cap)
	}
	if n := p.visible(p.T - 1); n > 65535*attentionWG {
		return fmt.Errorf("a query sees %d keys, over the %d one dispatch can score", n, 65535*attentionWG)
	}
	if uint64(end)*uint64(p.Heads*p.HeadDim) >= 1<<32 || uint64(p.Cap)*uint64(p.KVHeads*p.HeadDim) >= 1<<32 {
		return fmt.Errorf("tensors over 2^32 elements can't be indexed in a shader")
	}
	return nil
}

// attentionPlan is how the launcher splits the work and the scratch.
type attentionPlan struct {
	vec4    bool // attention_vec4.wgsl serves the shape
	chunk   int  // keys per split-K chunk
	tc      int  // queries per chunk
	stride  int  // most keys any query sees, rounded up to 8
	chunks  int  // ceil(stride / chunk)
	scratch int  // f32 elements of scratch
	// pre: the keys are rotated once per call (krope) into kr f32 elements of
	// scratch after the query chunks' region (the region is reserved, up to
	// attentionKRBudget, wherever T > 1 and there is no window, so the scratch
	// still never shrinks as Rows grow).
	pre bool
	kr  int
}

// scoreStride is the score slots per (query, head) for queries that see up
// to n keys: a multiple of 8, the vec4 kernel's key blocks.
func scoreStride(n int) int { return (n + 7) &^ 7 }

func (p AttentionParams) plan() attentionPlan {
	vec4 := p.HeadDim%16 == 0 && p.RopeDim%8 == 0 && (!p.NeoX || p.RopeDim%16 == 0)
	chunk := attentionChunk
	if vec4 {
		chunk = attentionChunkVec4
	}
	stride := scoreStride(p.visible(p.T - 1)) // visibility never shrinks with t
	chunks := (stride + chunk - 1) / chunk
	per := p.Heads * (p.HeadDim + stride + 4*chunks + chunks*p.HeadDim)
	// Query chunks fill at most max(budget, one query); scratch is that
	// limit or all T queries, whichever is less, so it never shrinks as T or
	// Rows grow and sizing for the largest call covers every smaller one.
	limit := max(attentionBudget, per)
	pl := attentionPlan{
		vec4:    vec4,
		chunk:   chunk,
		tc:      min(p.T, limit/per, 65535/p.KVHeads), // scores grids have y = tc × KV heads
		stride:  stride,
		chunks:  chunks,
		scratch: min(p.T*per, limit),
	}
	// A prefill call over a cache without a window sees key kk at row kk and
	// position kk for every query, so its keys can be rotated once, not once
	// per query.
	if vec4 && p.T > 1 && p.Window == 0 {
		rows := p.visible(p.T - 1)
		need := rows * p.KVHeads * p.HeadDim
		pl.pre = need <= attentionKRBudget && !p.RotatePerQuery
		pl.kr = min(need, attentionKRBudget)
		pl.scratch += pl.kr
	}
	return pl
}

// AttentionScratch is the number of f32 elements of scratch Attention
// needs for p (0 if p is invalid, which Attention reports). It never
// decreases as T or Rows grow (at most 16 MiB unless one query needs more),
// so scratch sized for a context's largest call serves all of them.
func AttentionScratch(p AttentionParams) int {
	if p.check() != nil {
		return 0
	}
	return p.plan().scratch
}

// attentionUniform is the Params of attention_params.wgsl, shared by attention.wgsl and
// attention_vec4.wgsl, for one chunk of queries.
type attentionUniform struct {
	t0, tc                     uint32 // first query of the chunk, queries in it
	heads, kvHeads             uint32
	rows, sink, window, cap    uint32 // AttentionParams
	scale                      float32
	stride                     uint32 // score slots per (query, head): scoreStride of the chunk's last query
	chunks                     uint32 // ceil(stride / C)
	qOff, sOff, stOff, partOff uint32 // scratch offsets (f32 elements)
	krOff, krRows              uint32 // the rotated keys' offset and rows (attention_vec4.wgsl, PRE)
}

// Attention records out = softmax(q·Kᵀ·Scale + causal/window mask)·V for the
// T queries of a chunk, rotating queries and keys with the rope table
// (f32 [maxPos, RopeDim] from RopeTable, maxPos above every position used).
// k and v are the caches (f32 or f16 [>= Cap, KVHeads*HeadDim]); query head
// h reads KV head h / (Heads/KVHeads). scratch holds AttentionScratch(p)
// f32 elements. out must not share a buffer with any other argument.
func (o *Ops) Attention(rec *engine.Recorder, q, k, v, rope, out, scratch *engine.Tensor, p AttentionParams) error {
	return o.attention(rec, q, k, v, rope, out, scratch, nil, p)
}

// AttentionMass is Attention that also adds to mass (f32 [KVHeads, Cap]) the attention
// each key received: mass[g, j] += the sum, over the T queries and the query heads of KV
// head g, of the softmax probability of key j (attention_mass.wgsl). For heavy-hitter
// eviction; caches without a window only (key j is cache row j). The extra passes run
// after attention's, so Attention itself is unchanged.
func (o *Ops) AttentionMass(rec *engine.Recorder, q, k, v, rope, out, scratch, mass *engine.Tensor, p AttentionParams) error {
	if mass == nil {
		return fmt.Errorf("attention mass: the mass tensor is nil")
	}
	if p.Window != 0 {
		return fmt.Errorf("attention mass: a window of %d rows; mass is kept for caches without a window only", p.Window)
	}
	if err := need("attention mass", mass, engine.F32, p.KVHeads*p.Cap); err != nil {
		return err
	}
	for _, in := range []*engine.Tensor{q, k, v, rope, out, scratch} {
		if in != nil && mass.Buf == in.Buf {
			return fmt.Errorf("attention mass: mass %q shares a buffer with another argument", mass.Buf.Label)
		}
	}
	return o.attention(rec, q, k, v, rope, out, scratch, mass, p)
}

func (o *Ops) attention(rec *engine.Recorder, q, k, v, rope, out, scratch, mass *engine.Tensor, p AttentionParams) error {
	if err := p.check(); err != nil {
		return fmt.Errorf("attention: %w", err)
	}
	width := p.Heads * p.HeadDim
	for _, c := range []struct {
		t    *engine.Tensor
		name string
		n    int
	}{{q, "q", p.T * width}, {out, "out", p.T * width}, {rope, "rope", p.RopeDim}, {scratch, "scratch", AttentionScratch(p)}} {
		if err := need("attention "+c.name, c.t, engine.F32, c.n); err != nil {
			return err
		}
	}
	kvWidth := p.KVHeads * p.HeadDim
	for _, c := range []*engine.Tensor{k, v} {
		if c == nil {
			return fmt.Errorf("attention: cache tensor is nil")
		}
		switch c.DType {
		case engine.F32, engine.F16:
		case engine.Q8_0, engine.Q4_0:
			if kvWidth%32 != 0 {
				return fmt.Errorf("attention: a %s cache needs rows of whole 32-channel blocks, got %d KV heads x %d", c.DType, p.KVHeads, p.HeadDim)
			}
		default:
			return fmt.Errorf("attention: cache %q is %s, want f32, f16, q8_0 or q4_0", c.Buf.Label, c.DType)
		}
		if c.Cols != kvWidth || c.Rows < p.Cap {
			return fmt.Errorf("attention: cache %q is [%d,%d], want at least [%d,%d] (Cap, KVHeads*HeadDim)", c.Buf.Label, c.Rows, c.Cols, p.Cap, kvWidth)
		}
	}
	pl := p.plan()
	if n := p.visible(p.T - 1); rope.Cols != p.RopeDim || rope.Rows < n {
		return fmt.Errorf("attention: positions reach %d but the rope table %q is [%d,%d]; it needs [%d,%d] (maxPos, RopeDim)", n-1, rope.Buf.Label, rope.Rows, rope.Cols, n, p.RopeDim)
	}
	for _, in := range []*engine.Tensor{q, k, v, rope, scratch} {
		if out.Buf == in.Buf {
			return fmt.Errorf("attention: out %q shares a buffer with an input; WebGPU forbids binding one buffer read-only and writable in a dispatch", out.Buf.Label)
		}
	}
	for _, in := range []*engine.Tensor{q, k, v, rope} {
		if scratch.Buf == in.Buf {
			return fmt.Errorf("attention: scratch %q shares a buffer with an input", scratch.Buf.Label)
		}
	}

	consts := engine.Constants{
		"WG": u(attentionWG), "D": u(p.HeadDim), "RD": u(p.RopeDim), "G": u(p.Heads / p.KVHeads),
		"C": u(pl.chunk), "NEOX": fmt.Sprint(p.NeoX),
		"KT": u(qtype(k.DType)), "VT": u(qtype(v.DType)),
		"CAP": strconv.FormatFloat(float64(p.Softcap), 'e', -1, 32), // a WGSL float literal
		"PRE": fmt.Sprint(pl.pre),
	}
	file := "attention.wgsl"
	rotJobs := p.RopeDim / 2 // qrope jobs that rotate: pairs
	if pl.vec4 {
		file = "attention_vec4.wgsl"
		rotJobs = p.RopeDim / 8 // octets of pairs
		if p.NeoX {
			rotJobs = p.RopeDim / 16 // an octet and its partner octet
		}
		consts["KVH"], consts["ROT_JOBS"] = u(p.KVHeads), u(rotJobs)
	}
	var kernels [5]*engine.Kernel
	for i, entry := range []string{"qrope", "scores", "softmax", "values", "combine"} {
		kn, err := o.kernel(file, entry, consts)
		if err != nil {
			return err
		}
		kernels[i] = kn
	}
	kb, vb, err := cacheBindings(k, v, pl.vec4)
	if err != nil {
		return err
	}
	bind := []engine.Binding{q.Binding(), kb, vb, rope.Binding(), out.Binding(), scratch.Binding()}
	var massK [2]*engine.Kernel
	if mass != nil {
		mc := engine.Constants{"WG": u(attentionWG), "C": u(pl.chunk), "G": u(p.Heads / p.KVHeads)}
		for i, entry := range []string{"massnorm", "accumulate"} {
			kn, err := o.kernel("attention_mass.wgsl", entry, mc)
			if err != nil {
				return err
			}
			massK[i] = kn
		}
	}
	// scratch layout per query chunk, in f32 elements (all multiples of 4)
	qOff := 0
	sOff := qOff + pl.tc*width
	stOff := sOff + pl.tc*p.Heads*pl.stride
	partOff := stOff + pl.tc*p.Heads*4*pl.chunks
	krOff, krRows := pl.scratch-pl.kr, 0
	if pl.pre {
		krRows = p.visible(p.T - 1)
		kn, err := o.kernel(file, "krope", consts)
		if err != nil {
			return err
		}
		params := words(attentionUniform{heads: uint32(p.Heads), kvHeads: uint32(p.KVHeads), rows: uint32(p.Rows), sink: uint32(p.Sink),
			cap: uint32(p.Cap), scale: p.Scale, krOff: uint32(krOff), krRows: uint32(krRows)})
		if err := rec.Dispatch(kn, params, engine.Grid(krRows*p.KVHeads*(rotJobs+(p.HeadDim-p.RopeDim)/8), attentionWG), bind...); err != nil {
			return err
		}
	}
	for t0 := 0; t0 < p.T; t0 += pl.tc {
		tc := min(pl.tc, p.T-t0)
		stride := scoreStride(p.visible(t0 + tc - 1))
		chunks := (stride + pl.chunk - 1) / pl.chunk
		params := words(attentionUniform{
			t0: uint32(t0), tc: uint32(tc), heads: uint32(p.Heads), kvHeads: uint32(p.KVHeads),
			rows: uint32(p.Rows), sink: uint32(p.Sink), window: uint32(p.Window), cap: uint32(p.Cap), scale: p.Scale,
			stride: uint32(stride), chunks: uint32(chunks), qOff: uint32(qOff), sOff: uint32(sOff), stOff: uint32(stOff), partOff: uint32(partOff),
			krOff: uint32(krOff), krRows: uint32(krRows),
		})
		var grids [5][3]uint32
		if pl.vec4 {
			grids = [5][3]uint32{
				engine.Grid(tc*p.Heads*(rotJobs+(p.HeadDim-p.RopeDim)/8), attentionWG),          // qrope: octets
				{uint32((stride/8 + attentionWG - 1) / attentionWG), uint32(tc * p.KVHeads), 1}, // scores: blocks of 8 keys, KV heads
				engine.Grid(tc*p.Heads*chunks, attentionWG),                                     // softmax: head chunks
				engine.Grid(tc*p.KVHeads*chunks*p.HeadDim/16, attentionWG),                      // values: 16 dims
				engine.Grid(tc*width/4, attentionWG),                                            // combine: 4 dims
			}
		} else {
			grids = [5][3]uint32{
				engine.Grid(tc*p.Heads*(rotJobs+p.HeadDim-p.RopeDim), attentionWG), // qrope: pairs and tail dims
				{uint32((stride + attentionWG - 1) / attentionWG), uint32(tc), 1},  // scores: keys
				engine.Grid(tc*p.Heads*chunks, attentionWG),                        // softmax: head chunks
				engine.Grid(tc*p.KVHeads*chunks*p.HeadDim/2, attentionWG),          // values: pairs of dims
				engine.Grid(tc*width, attentionWG),                                 // combine: dims
			}
		}
		for i, kn := range kernels {
			if err := rec.Dispatch(kn, params, grids[i], bind...); err != nil {
				return err
			}
		}
		if mass != nil {
			if err := rec.Dispatch(massK[0], params, engine.Grid(tc*p.Heads, attentionWG), scratch.Binding(), mass.Binding()); err != nil {
				return err
			}
			if err := rec.Dispatch(massK[1], params, engine.Grid(p.KVHeads*stride, attentionWG), scratch.Binding(), mass.Binding()); err != nil {
				return err
			}
		}
	}
	return nil
}

// cacheBindings binds the caches. attention_vec4.wgsl reads them as vec4 words, so a
// binding must cover whole 16-byte words: f32 and f16 rows always do (D is a multiple of
// 16), but q8_0/q4_0 rows (34 or 18 bytes a block) need the binding rounded up into the
// buffer's slack (kvcache allocates 16 bytes after quantised matrices).
func cacheBindings(k, v *engine.Tensor, vec4 bool) (kb, vb engine.Binding, err error) {
	bind := func(c *engine.Tensor) (engine.Binding, error) {
		b := c.Binding()
		if !vec4 || !IsQuantKV(c.DType) {
			return b, nil
		}
		b.Size = (c.Bytes() + 15) &^ 15
		if c.Offset+b.Size > c.Buf.Size() {
			return b, fmt.Errorf("attention: %s cache %q of %d bytes at offset %d is read in 16-byte words, and its buffer of %d bytes ends before the last word; allocate it with 16 bytes of slack",
				c.DType, c.Buf.Label, c.Bytes(), c.Offset, c.Buf.Size())
		}
		return b, nil
	}
	if kb, err = bind(k); err != nil {
		return kb, vb, err
	}
	vb, err = bind(v)
	return kb, vb, err
}
