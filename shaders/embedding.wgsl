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

// Byte b of the part.
fn byte_at(b: u32) -> u32 {
  return (table[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu;
}

// The f16 at even byte offset b, as f32.
fn half_at(b: u32) -> f32 {
  return unpack2x16float(table[b >> 2u] >> ((b & 2u) * 8u)).x;
}

// Element c of part row r.
fn element(r: u32, c: u32) -> f32 {
  if (WTYPE == 0u) {
    return bitcast<f32>(table[r * p.d + c]);
  }
  if (WTYPE == 1u) {
    let h = r * p.d + c;
    let v = unpack2x16float(table[h >> 1u]);
    return select(v.x, v.y, (h & 1u) == 1u);
  }
  let blk = r * (p.d / 32u) + c / 32u;
  let i = c % 32u;
  if (WTYPE == 2u) {
    let o = blk * 34u;
    let q = bitcast<i32>(byte_at(o + 2u + i) << 24u) >> 24u;
    return f32(q) * half_at(o);
  }
  let o = blk * 18u;
  let q = (byte_at(o + 2u + i % 16u) >> ((i / 16u) * 4u)) & 15u;
  return (f32(q) - 8.0) * half_at(o);
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
