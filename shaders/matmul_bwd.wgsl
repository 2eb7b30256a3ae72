// Input gradient of y = x·Wᵀ through a frozen weight: dx[m, k] (+)= dy[m, ldy] · W[n, k],
// for one weight part of WTYPE (f32, f16, q8_0, q4_0), dequantised element by element
// exactly as the forward and the embedding gather do (dequant_element.wgsl). The part
// holds weight rows [col0, col0 + n), which meet dy's columns [col0, col0 + n).
//
// Bindings: @binding(0) uniform Params; then
//   1 dy    (read) f32 [m, ldy]
//   2 table (read) one weight part, [n, k] of WTYPE as raw words
//   3 dx    (read_write) f32 [m, k]
// Dispatch: workgroups (ceil(ceil(k/4)/WG), ceil(m/TM), 1): each invocation computes a
// TM x 4 tile of dx (4 consecutive columns, TM rows), looping over the part's rows, so
// each weight element is dequantised once per TM rows of dy (the dy loads are uniform over
// the workgroup; a block type's 4 columns share one scale and one quant word). No barriers.
// A part of many rows takes several dispatches, rows [r0, n) each, the later ones adding
// (llvmpipe ends an invocation's loops after 65535 iterations in all; docs/webgpu.md).
// Constants: WTYPE (0 f32, 1 f16, 2 q8_0, 3 q4_0), WG, TM.

struct Params {
  m: u32,
  n: u32,     // rows of this part
  d: u32,     // k: columns of W and dx (named d for dequant_element.wgsl)
  ldy: u32,   // row stride of dy (all the weight's rows)
  col0: u32,  // first weight row of this part
  acc: u32,   // 1: dx += ..., 0: dx = ...
  r0: u32,    // this dispatch takes part rows [r0, n)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

#include "dequant_element.wgsl"

// The 4 bytes at byte offset b (any alignment), as one little-endian word.
fn word_at(b: u32) -> u32 {
  let w0 = table[b >> 2u];
  let sh = (b & 3u) * 8u;
  if (sh == 0u) {
    return w0; // never reads past the last word
  }
  return (w0 >> sh) | (table[(b >> 2u) + 1u] << (32u - sh));
}

// Elements c0..c0+3 of part row r (c0 % 4 == 0, and c0 + 4 <= d for the block types, whose
// rows are whole blocks): the block's scale and quant word are read once for all four.
fn element4(r: u32, c0: u32, cc: array<u32, 4>) -> vec4<f32> {
  if (WTYPE == 0u || WTYPE == 1u) {
    return vec4<f32>(element(r, cc[0]), element(r, cc[1]), element(r, cc[2]), element(r, cc[3]));
  }
  let blk = r * (p.d / 32u) + c0 / 32u;
  let i = c0 % 32u;
  if (WTYPE == 2u) {
    let o = blk * 34u;
    let q = word_at(o + 2u + i);
    let v = bitcast<vec4<i32>>(vec4<u32>(q << 24u, q << 16u, q << 8u, q)) >> vec4<u32>(24u);
    return vec4<f32>(v) * half_at(o);
  }
  let o = blk * 18u;
  let q = word_at(o + 2u + i % 16u) >> ((i / 16u) * 4u);
  let n = vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) & vec4<u32>(15u);
  return (vec4<f32>(n) - vec4<f32>(8.0)) * half_at(o);
}

@compute @workgroup_size(WG)
fn dx_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c0 = (wid.x * WG + lid.x) * 4u;
  let i0 = wid.y * TM;
  if (c0 >= p.d || i0 >= p.m) {
    return;
  }
  var cc: array<u32, 4>;
  for (var e = 0u; e < 4u; e++) {
    cc[e] = min(c0 + e, p.d - 1u);
  }
  var yo: array<u32, TM>;
  for (var a = 0u; a < TM; a++) {
    yo[a] = min(i0 + a, p.m - 1u) * p.ldy + p.col0;
  }
  var acc = array<vec4<f32>, TM>();
  for (var r = p.r0; r < p.n; r++) {
    let wv = element4(r, c0, cc);
    for (var a = 0u; a < TM; a++) {
      acc[a] += dy[yo[a] + r] * wv;
    }
  }
  for (var a = 0u; a < TM; a++) {
    let i = i0 + a;
    for (var e = 0u; e < 4u; e++) {
      let c = c0 + e;
      if (i < p.m && c < p.d) {
        var v = acc[a][e];
        if (p.acc != 0u) {
          v += dx[i * p.d + c];
        }
        dx[i * p.d + c] = v;
      }
    }
  }
}
