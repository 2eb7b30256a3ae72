// Embedding gather: out[i, c] = table[ids[i], c], dequantised to f32, for f32, f16, q8_0 and
// q4_0 tables.
//
// Bindings:
//   1 ids   (read) u32 [t]
//   2 table (read) one part of the table: rows [row0, row0 + rows) of [V, d] WTYPE, as raw
//               words (f32 bits, pairs of f16, or GGUF blocks of 34 / 18 bytes that are not
//               word aligned)
//   3 out   (rw)   f32 [t, d]
// Dispatch: engine.Grid(t * d, WG), one output element per invocation. A part writes only
// the rows whose ids fall in its rows; the last part also writes p.nan into rows whose id is
// past the table (>= row0 + rows), so a bad id shows as NaN and never reads out of bounds.
// Constants: WTYPE (0 f32, 1 f16, 2 q8_0, 3 q4_0), WG.
// Block layouts (GGUF): q8_0 = f16 scale, 32 int8 (34 bytes); q4_0 = f16 scale, 16 bytes
// whose low nibbles are elements 0-15 and high nibbles 16-31, value (q - 8) * scale.

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
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

#include "dequant_element.wgsl"

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
