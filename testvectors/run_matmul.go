package testvectors

import (
	"fmt"

	"github.com/freqkv/freqkv/engine"
	"github.com/freqkv/freqkv/shaders"
)

type matmulVariant struct {
	kern     shaders.MatMulKernel
	narrow   bool
	storageX bool
	xrows    int // xtiled: rows per uniform binding (0: what fits)
}

func (v matmulVariant) String() string {
	s := v.kern.String()
	if v.narrow {
		s += "/narrow"
	}
	if v.storageX {
		s += "/storage-x"
	}
	if v.xrows > 0 {
		s += fmt.Sprintf("/%d-row-bindings", v.xrows)
	}
	return s
}

// Every kernel (rows, groups, tiled, xtiled) with and without wide loads, the
// rows kernel with x in a storage binding as well as in a uniform one, and the
// xtiled kernel with a window over several uniform bindings of 3 rows.
var variants = func() []matmulVariant {
	var out []matmulVariant
	for _, k := range shaders.MatMulKernels {
		out = append(out, matmulVariant{kern: k}, matmulVariant{kern: k, narrow: true})
		if k == shaders.MatMulRows {
			out = append(out, matmulVariant{kern: k, storageX: true})
		}
		if k == shaders.MatMulXTiled {
			out = append(out, matmulVariant{kern: k, xrows: 3})
		}
	}
	return out
}()

// The matmul runner runs the vector on every kernel, whatever M is, and fails
// on the first kernel that misses the tolerance.
func init() {
	register("matmul", func(r *Run, v *Vector) (map[string][]float64, error) {
		var p [5]int
		for i, name := range []string{"M", "N", "K", "chunk_rows", "accumulate"} {
			var err error
			if p[i], err = v.Int(name); err != nil {
				return nil, err
			}
		}
		m, chunkRows, accumulate := p[0], p[3], p[4] != 0
		x, err := r.Input(v, "x")
		if err != nil {
			return nil, err
		}
		w, err := r.Weight(v, "w", chunkRows)
		if err != nil {
			return nil, err
		}
		if w.Rows != p[1] || w.Cols != p[2] {
			return nil, fmt.Errorf("vector %s: w is [%d,%d], params say N=%d K=%d", v.Name, w.Rows, w.Cols, p[1], p[2])
		}
		opt := shaders.MatMulOptions{Accumulate: accumulate}
		if _, ok := v.Inputs["bias"]; ok {
			if opt.Bias, err = r.Input(v, "bias"); err != nil {
				return nil, err
			}
		}
		var y0 []byte
		if accumulate {
			a, ok := v.Inputs["y0"]
			if !ok {
				return nil, fmt.Errorf("vector %s: accumulate needs input y0", v.Name)
			}
			if y0, err = a.Bytes(); err != nil {
				return nil, fmt.Errorf("input y0: %w", err)
			}
		}
		y, err := r.Output(v, "y", engine.F32)
		if err != nil {
			return nil, err
		}
		var got map[string][]float64
		for _, variant := range variants {
			kern := variant.kern
			if variant.narrow && w.DType.BlockSize() > 1 {
				continue // the block types have one kernel file
			}
			if accumulate {
				err = y.Upload(y0)
			} else {
				err = Poison(y)
			}
			if err != nil {
				return nil, err
			}
			opt.Kernel, opt.NarrowLoads, opt.StorageX, opt.XTileRows = kern, variant.narrow, variant.storageX, variant.xrows
			got, err = r.Submit(func(rec *engine.Recorder) error { return r.Ops.MatMul(rec, x, w, y, m, opt) }, map[string]*engine.Tensor{"y": y})
			if err != nil {
				return nil, fmt.Errorf("kernel %s: %w", variant, err)
			}
			if res := Judge(v, got); res.Err != nil || !res.OK {
				return nil, fmt.Errorf("kernel %s: max abs %.3g > tolerance %.3g (max rel %.3g) %v", variant, res.MaxAbs, res.Tol, res.MaxRel, res.Err)
			}
		}
		return got, nil
	})
}
