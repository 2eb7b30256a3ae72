// General f32 matrix product for training: C[m, n] = alpha · op(A)[m, k] · op(B)[k, n]
// (+ C when acc), with op a optional transpose, so one kernel serves dX = dY·W,
// dW += dYᵀ·X, trainable forwards x·Wᵀ and the LoRA passes.
//
// Bindings: @binding(0) uniform Params; then
//   a (read) f32: [m, k] row-major, or [k, m] when TA, from element aoff, row stride lda
//   b (read) f32: [k, n] row-major, or [n, k] when TB, from boff, row stride ldb
//   c (read_write) f32 [m, n] from coff, row stride ldc
// (strides and offsets let a product address a block of a larger matrix: a weight part's
// columns of dy, one head's slice.)
// Dispatch: workgroups (ceil(ceil(n/4)/WG), ceil(m/TM), 1); each invocation computes a
// TM x 4 tile of C in registers (rows and columns past the edge repeat the last one and
// are never stored), no barriers or shared memory. A workgroup shares its TM rows, so
// A's loads are workgroup-uniform (broadcast); B's 4 columns are the invocation's own.
// Constants: WG, TM, TA, TB (bools).

struct Params {
  m: u32,
  n: u32,
  k: u32,
  alpha: f32,
  acc: u32,   // 1: C += ..., 0: C = ... (C is then never read)
  aoff: u32,
  boff: u32,
  coff: u32,
  lda: u32,
  ldb: u32,
  ldc: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

fn aAt(i: u32, l: u32) -> f32 {
  if (TA) {
    return a[p.aoff + l * p.lda + i];
  }
  return a[p.aoff + i * p.lda + l];
}

fn bAt(l: u32, j: u32) -> f32 {
  if (TB) {
    return b[p.boff + j * p.ldb + l];
  }
  return b[p.boff + l * p.ldb + j];
}

@compute @workgroup_size(WG)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j0 = (wid.x * WG + lid.x) * 4u;
  let i0 = wid.y * TM;
  if (j0 >= p.n || i0 >= p.m) {
    return;
  }
  var ii: array<u32, TM>;
  for (var q = 0u; q < TM; q++) {
    ii[q] = min(i0 + q, p.m - 1u);
  }
  var jj: array<u32, 4>;
  for (var q = 0u; q < 4u; q++) {
    jj[q] = min(j0 + q, p.n - 1u);
  }
  var acc = array<vec4<f32>, TM>();
  for (var l = 0u; l < p.k; l++) {
    let bv = vec4<f32>(bAt(l, jj[0]), bAt(l, jj[1]), bAt(l, jj[2]), bAt(l, jj[3]));
    for (var q = 0u; q < TM; q++) {
      acc[q] += aAt(ii[q], l) * bv;
    }
  }
  for (var q = 0u; q < TM; q++) {
    let i = i0 + q;
    for (var e = 0u; e < 4u; e++) {
      let j = j0 + e;
      if (i < p.m && j < p.n) {
        var r = p.alpha * acc[q][e];
        let o = p.coff + i * p.ldc + j;
        if (p.acc != 0u) {
          r += c[o];
        }
        c[o] = r;
      }
    }
  }
}
