package testvectors

import (
	"encoding/binary"
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

func init() {
	register("xent", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		rows, vocab, scale := a.int("rows"), a.int("vocab"), a.float("scale")
		logits, targets, nll := a.in("logits"), a.in("targets"), a.out("nll")
		return a.submit(func(rec *engine.Recorder) error {
			return r.Ops.CrossEntropy(rec, logits, targets, nll, rows, vocab, scale)
		},
			map[string]*engine.Tensor{"nll": nll, "dlogits": logits})
	})
	register("embedding_bwd", func(r *Run, v *Vector) (map[string][]float64, error) {
		a := &args{r: r, v: v}
		t, d := a.int("t"), a.int("d")
		dy, dtable := a.in("dy"), a.inout("dtable")
		if a.err != nil {
			return nil, a.err
		}
		raw, err := v.Inputs["ids"].Bytes()
		if err != nil {
			return nil, err
		}
		if len(raw) != 4*t {
			return nil, fmt.Errorf("vector %s: %d bytes of ids for t = %d", v.Name, len(raw), t)
		}
		ids := make([]uint32, t)
		for i := range ids {
			ids[i] = binary.LittleEndian.Uint32(raw[4*i:])
		}
		idx, unique := shaders.EmbeddingGradIndex(ids)
		index, err := r.Dev.NewTensor("index", engine.U32, 1, len(idx))
		if err != nil {
			return nil, err
		}
		r.tmp = append(r.tmp, index)
		b := make([]byte, 4*len(idx))
		for i, x := range idx {
			binary.LittleEndian.PutUint32(b[4*i:], x)
		}
		if err := index.Upload(b); err != nil {
			return nil, err
		}
		return a.submit(func(rec *engine.Recorder) error { return r.Ops.EmbeddingBackward(rec, index, dy, dtable, unique, t, d) },
			map[string]*engine.Tensor{"dtable": dtable})
	})
}
