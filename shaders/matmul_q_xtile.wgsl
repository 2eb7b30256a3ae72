// Matrix product y = x·Wᵀ (+ bias) (+ y) for many rows of x on CPU adapters (prefill), GGUF
// block weights q8_0 and q4_0 (K a multiple of 32), dequantised once per block and tile.
// As matmul_vec4_xtile.wgsl: x goes through uniform bindings (on llvmpipe a branch-free
// gather, where a storage load is a loop over the SIMD lanes), a window of TM*B rows per
// dispatch, TM = 4 bindings of B rows, and each invocation keeps a TM x TN tile of y in
// registers (rows b, B+b, 2B+b, 3B+b of the window for row block b), so every word of W
// read feeds TM rows. A block is read as the whole words that hold it (9 for q8_0's 34
// bytes, 5 for q4_0's 18), each once, and realigned with shifts.
//
// Bindings:
//   1-4 x0..x3 (uniform) f32: binding a holds window rows [a*B, (a+1)*B), row stride K4
//        vec4 (XV = B*K4 vec4 each)
//   5 w    (read) one weight part, [n, k/32] blocks as raw words
//   6 bias (read) f32 [>= col0 + n] (any read-only buffer when p.bias == 0)
//   7 y    (rw)   f32; window row i is y row p.row0 + i; this part writes columns
//          [col0, col0 + n) of the window rows from p.first on
// Entry point and dispatch: xtile, TN consecutive output columns per invocation; workgroups
// (B, ceil(ceil(n/TN)/WG), 1), one dispatch per window.
// Constants: WTYPE (2 q8_0, 3 q4_0), WG, TN, TM (4), B, K4 (= k/4), XV (= B*K4),
// QW (quant words per block: 8 q8_0, 4 q4_0).
// Block layouts (GGUF): q8_0 = f16 scale, 32 int8 (34 bytes); q4_0 = f16 scale, 16 bytes
// whose low nibbles are elements 0-15 and high nibbles 16-31, value (q - 8) * scale.

#include "matmul_common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> x0: array<vec4<f32>, XV>;
@group(0) @binding(2) var<uniform> x1: array<vec4<f32>, XV>;
@group(0) @binding(3) var<uniform> x2: array<vec4<f32>, XV>;
@group(0) @binding(4) var<uniform> x3: array<vec4<f32>, XV>;
@group(0) @binding(5) var<storage, read> w: array<u32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;

// Bytes per block / 2: 17 (q8_0) or 9 (q4_0).
const PW = 33u - 8u * WTYPE;

#include "matmul_xtile_common.wgsl"

#include "matmul_q_unpack.wgsl"

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
  let nb = p.k / 32u;
  // Columns past the edge repeat the last one (in range, never stored).
  var jr: array<u32, TN>;
  for (var c = 0u; c < TN; c++) {
    jr[c] = min(j0 + c, p.n - 1u);
  }
  var acc: array<array<f32, TN>, TM>;
  for (var blk = 0u; blk < nb; blk++) {
    // Each column's block starts at word b: an even block on a word (scale in the low half,
    // quants two bytes on), an odd one two bytes into it (scale in the high half, quants
    // word aligned). Its words are read once each, one per quant word, carrying the last.
    var b: array<u32, TN>;
    var odd: array<bool, TN>;
    var d: array<f32, TN>;
    var prev: array<u32, TN>;
    for (var c = 0u; c < TN; c++) {
      let g = jr[c] * nb + blk;
      b[c] = (g * PW) >> 1u;
      odd[c] = (g & 1u) == 1u;
      prev[c] = w[b[c]];
      let s = unpack2x16float(prev[c]);
      d[c] = select(s.x, s.y, odd[c]);
    }
    let xi = 8u * blk;
    #unroll q QW
    {
      // Quant word q of each column, dequantised with the scale folded in.
      var lo: array<vec4<f32>, TN>;
      var hi: array<vec4<f32>, TN>;
      for (var c = 0u; c < TN; c++) {
        let cur = w[b[c] + q + 1u];
        let qw = select((prev[c] >> 16u) | (cur << 16u), cur, odd[c]);
        prev[c] = cur;
        if (WTYPE == 2u) {
          lo[c] = d[c] * i8x4(qw);
        } else {
          lo[c] = d[c] * u4x4(qw);
          hi[c] = d[c] * u4x4(qw >> 4u);
        }
      }
      #unroll row TM
      {
        if (WTYPE == 2u) {
          let xl = xload(row, xr + xi + q);
          for (var c = 0u; c < TN; c++) {
            acc[row][c] = fdot(acc[row][c], xl, lo[c]);
          }
        } else {
          // q4_0: word q holds elements 4q..4q+3 (low nibbles) and 16+4q.. (high).
          let xl = xload(row, xr + xi + q);
          let xh = xload(row, xr + xi + 4u + q);
          for (var c = 0u; c < TN; c++) {
            acc[row][c] = fdot(fdot(acc[row][c], xl, lo[c]), xh, hi[c]);
          }
        }
      }
      #end row
    }
    #end q
  }
  store_tile(acc, rb, j0);
}
