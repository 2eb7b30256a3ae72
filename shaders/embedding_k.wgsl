// Embedding gather for GGUF's scaled-block tables (q4_k, q5_k, q6_k with rows a multiple of
// 256; q4_1, q5_0, q5_1, iq4_nl with rows a multiple of 32): out[i, c] = table[ids[i], c],
// dequantised to f32 from the file's block layout (see kquant_common.wgsl).
//
// Bindings:
//   1 ids (read) u32 [t]
//   2 w   (read) one part of the table: rows [row0, row0 + rows) of [V, d] WTYPE, as raw
//             words (blocks of 144, 176, 210, 20, 22, 24 or 18 bytes)
//   3 out (rw)   f32 [t, d]
// Dispatch: engine.Grid(t * d, WG), one output element per invocation. A part writes only
// the rows whose ids fall in its rows; the last part also writes p.nan into rows whose id is
// past the table (>= row0 + rows), so a bad id shows as NaN and never reads out of bounds.
// Constants: WTYPE (4 q4_k, 5 q5_k, 6 q6_k, 7 q4_1, 8 q5_0, 9 q5_1, 10 iq4_nl), WG.

struct Params {
  t: u32,     // tokens
  d: u32,     // row length (embedding dimension)
  row0: u32,  // first table row this part holds
  rows: u32,  // rows this part holds
  last: u32,  // 1 for the table's last part
  nan: u32,   // bits of a NaN (WGSL constant expressions may not be NaN)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

#include "kquant_common.wgsl"

// Element c of part row r.
fn element(r: u32, c: u32) -> f32 {
  let be = 32u * blk_units();
  let o = (r * (p.d / be) + c / be) * sb_bytes();
  let e = c % be;
  let u = e / 32u;
  let qi = (e % 32u) / 4u;
  return deq(unit_scales(o, u), qi, unit_q(o, u, qi))[e % 4u];
}

@compute @workgroup_size(WG)
fn embedding(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let e = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (e >= p.t * p.d) {
    return;
  }
  let tok = e / p.d;
  let id = ids[tok];
  if (id < p.row0) {
    return; // an earlier part holds this row
  }
  let r = id - p.row0;
  if (r < p.rows) {
    out[e] = element(r, e - tok * p.d);
  } else if (p.last == 1u) {
    out[e] = bitcast<f32>(p.nan);
  }
}
