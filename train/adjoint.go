package train

// denseAdjointMax bounds the elements of the compression adjoint's matrix
// (L x m) up to which the backward applies it as one matrix product
// (GEMM, one dispatch per cache) instead of the DCT chain of
// shaders.CompressAdjoint (about twenty dispatches): the same linear map,
// computed differently in f32. Past it the product's O(L·m) work per
// channel outgrows the FFTs' O(L log L).
//
// The matrix is the compression's own table transposed: the compression is
// y = M·x with M of m x L, so dx = Mᵀ·dy, and shaders.SpreadTable stores
// M[k][j] at [j·m + k], which is Mᵀ row-major (L x m).
var denseAdjointMax = 1 << 20
