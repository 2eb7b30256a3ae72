package train

import "math"

// denseAdjointMax bounds the elements of the compression adjoint's matrix
// (L x m) up to which the backward applies it as one matrix product
// (GEMM, one dispatch per cache) instead of the DCT chain of
// shaders.CompressAdjoint (about twenty dispatches): the same linear map,
// computed differently in f32. Past it the product's O(L·m) work per
// channel outgrows the FFTs' O(L log L).
var denseAdjointMax = 1 << 20

// compressAdjointMatrix is the adjoint of FreqKV's compression of a span of
// L rows to m, y = sqrt(m/L)·DCT-III_m(DCT-II_L(x)[:m]) (orthonormal DCTs,
// every channel alike), as an L x m row-major matrix A: dx = A·dy. The
// compression is y = M·x with M = sqrt(m/L)·C3_m·P·C2_L (P keeps the first m
// coefficients), so A = Mᵀ; computed in float64.
func compressAdjointMatrix(L, m int) []float32 {
	// dct2(size)[k*size+n]: row k of the orthonormal DCT-II of length size,
	// its first m rows
	dct2 := func(size int) []float64 {
		t := make([]float64, m*size)
		for k := 0; k < m; k++ {
			c := math.Sqrt(2 / float64(size))
			if k == 0 {
				c = math.Sqrt(1 / float64(size))
			}
			for n := 0; n < size; n++ {
				t[k*size+n] = c * math.Cos(math.Pi*float64((2*n+1)*k)/float64(2*size))
			}
		}
		return t
	}
	cm, cl := dct2(m), dct2(L)
	scale := math.Sqrt(float64(m) / float64(L))
	a := make([]float32, L*m)
	for i := 0; i < m; i++ { // output row of the compression
		for n := 0; n < L; n++ { // input row
			var s float64
			for k := 0; k < m; k++ {
				s += cm[k*m+i] * cl[k*L+n] // C3_m[i][k] = C2_m[k][i]
			}
			a[n*m+i] = float32(scale * s)
		}
	}
	return a
}
