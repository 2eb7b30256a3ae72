// Matrix product y = x·Wᵀ (+ bias) (+ y) for many rows of x on CPU adapters (prefill), f32
// weights with K a multiple of 4 or f16 weights with K a multiple of 8 (16-byte loads of W).
// llvmpipe runs the invocations of a workgroup as the lanes of a SIMD vector and compiles
// every storage-buffer load into a loop over the lanes with a branch per lane, where a
// uniform-buffer load is a branch-free gather. So x goes through uniform bindings: a
// dispatch takes a window of TM*B rows of x, B rows in each of TM = 4 uniform bindings (a
// binding is at most 64 KiB on lavapipe), and each invocation keeps a TM x TN tile of y in
// registers, rows b, B+b, 2B+b and 3B+b of the window for its row block b: tile row a
// always reads binding a, chosen at compile time. Every 16-byte load of W (the only
// storage loads of the inner loop) feeds TM x 8 multiply-adds (f16), against TN for each x
// load. B row blocks per dispatch (up to 16) cut the dispatches per product B-fold.
//
// Bindings:
//   1-4 x0..x3 (uniform) f32: binding a holds window rows [a*B, (a+1)*B), row stride K4
//        vec4 (XV = B*K4 vec4 each)
//   5 w    (read) one weight part, [n, k] of WTYPE as 16-byte groups (4 f32, or 8 f16)
//   6 bias (read) f32 [>= col0 + n] (any read-only buffer when p.bias == 0)
//   7 y    (rw)   f32; window row i is y row p.row0 + i; this part writes columns
//          [col0, col0 + n) of the window rows from p.first on
// Entry point and dispatch: xtile, TN consecutive output columns per invocation; workgroups
// (B, ceil(ceil(n/TN)/WG), 1), one dispatch per window.
// Constants: WTYPE (0 f32, 1 f16), WG, TN, TM (4), B, K4 (= k/4), XV (= B*K4).

#include "matmul_common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> x0: array<vec4<f32>, XV>;
@group(0) @binding(2) var<uniform> x1: array<vec4<f32>, XV>;
@group(0) @binding(3) var<uniform> x2: array<vec4<f32>, XV>;
@group(0) @binding(4) var<uniform> x3: array<vec4<f32>, XV>;
@group(0) @binding(5) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;

// A group is 4 elements (f32) or 8 (f16): one 16-byte load of W.
const GROUP = 4u + 4u * WTYPE;

#include "matmul_xtile_common.wgsl"

@compute @workgroup_size(WG)
fn xtile(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // The row block is the fastest-varying workgroup index, so the B workgroups that read
  // one tile of W's columns run one after another while that tile is in cache.
  let rb = wid.x;
  let j0 = (wid.y * WG + lid.x) * TN;
  if (j0 >= p.n) {
    return;
  }
  let xr = rb * K4; // this row block's row in every binding
  let groups = p.k / GROUP;
  // Columns past the edge repeat the last one (in range, never stored).
  var wr: array<u32, TN>;
  for (var c = 0u; c < TN; c++) {
    wr[c] = min(j0 + c, p.n - 1u) * groups;
  }
  var acc: array<array<f32, TN>, TM>;
  for (var g = 0u; g < groups; g++) {
    // W's group for each column, as f32: elements [0, 4) in lo, [4, 8) in hi (f16).
    var lo: array<vec4<f32>, TN>;
    var hi: array<vec4<f32>, TN>;
    for (var c = 0u; c < TN; c++) {
      let q = w[wr[c] + g];
      if (WTYPE == 0u) {
        lo[c] = bitcast<vec4<f32>>(q);
      } else {
        lo[c] = vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));
        hi[c] = vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w));
      }
    }
    let xi = g * (GROUP / 4u);
    // The rows written out (see shaders.unroll), so the tile's indices are constants.
    #unroll row TM
    {
      let xl = xload(row, xr + xi);
      if (WTYPE == 0u) {
        for (var c = 0u; c < TN; c++) {
          acc[row][c] = fdot(acc[row][c], xl, lo[c]);
        }
      } else {
        let xh = xload(row, xr + xi + 1u);
        for (var c = 0u; c < TN; c++) {
          acc[row][c] = fdot(fdot(acc[row][c], xl, lo[c]), xh, hi[c]);
        }
      }
    }
    #end row
  }
  store_tile(acc, rb, j0);
}
