package testvectors

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

// chunkedWeight uploads a named input as a weight in parts of chunkRows rows
// (0: as few parts as the device allows), and checks that chunking split it.
func (r *Run) chunkedWeight(v *Vector, name string, chunkRows int) (*engine.Weight, error) {
	a, ok := v.Inputs[name]
	if !ok {
		return nil, fmt.Errorf("vector %s: missing input %q", v.Name, name)
	}
	dt, err := a.EngineDType()
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", name, err)
	}
	rows, cols := split(a.Shape)
	b, err := a.Bytes()
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", name, err)
	}
	var maxPart uint64
	if chunkRows > 0 {
		rb, err := dt.RowBytes(cols)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", name, err)
		}
		maxPart = uint64(chunkRows) * rb
	}
	w, err := r.Dev.UploadWeight(name, dt, rows, cols, b, maxPart)
	if err != nil {
		return nil, err
	}
	r.tmp = append(r.tmp, w)
	if want := (rows + chunkRows - 1) / max(chunkRows, 1); chunkRows > 0 && len(w.Parts) != want {
		return nil, fmt.Errorf("vector %s: chunk_rows %d split %d rows into %d parts, want %d", v.Name, chunkRows, rows, len(w.Parts), want)
	}
	return w, nil
}

func init() {
	register("embedding", func(r *Run, v *Vector) (map[string][]float64, error) {
		tokens, err := v.Int("tokens")
		if err != nil {
			return nil, err
		}
		dim, err := v.Int("dim")
		if err != nil {
			return nil, err
		}
		chunkRows, err := v.Int("chunk_rows")
		if err != nil {
			return nil, err
		}
		ids, err := r.Input(v, "ids")
		if err != nil {
			return nil, err
		}
		table, err := r.chunkedWeight(v, "table", chunkRows)
		if err != nil {
			return nil, err
		}
		if table.Cols != dim {
			return nil, fmt.Errorf("vector %s: table rows hold %d elements, params say dim=%d", v.Name, table.Cols, dim)
		}
		out, err := r.Output(v, "out", engine.F32)
		if err != nil {
			return nil, err
		}
		return r.Submit(func(rec *engine.Recorder) error {
			return r.Ops.Embedding(rec, ids, table, out, tokens)
		}, map[string]*engine.Tensor{"out": out})
	})
}
