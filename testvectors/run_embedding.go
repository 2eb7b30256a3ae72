package testvectors

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

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
		table, err := r.Weight(v, "table", chunkRows)
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
