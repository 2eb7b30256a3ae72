// Shared by kvquant_store.wgsl and kvquant_load.wgsl (spliced in by #include;
// not a kernel): their Params and where their rows live.
//
// The rows are T rows of each of `batches` matrices; row t of matrix b is
// f32 row b*fstride + f0 + t on the f32 side and cache row b*cstride + slot(rows + t)
// on the cache side, where
//   slot(j) = j < cap ? j : sink + (j - sink) % (cap - sink)
// is kvstore.wgsl's ring (the compressor's rows never wrap). A cache row is
// dim/32 blocks packed back to back, so row r starts at byte r * (dim/32) * BB.
// The including file declares WG.

struct Params {
  t: u32,       // rows per matrix
  rows: u32,    // logical cache row of row 0
  sink: u32,    // slot(): pinned rows
  cap: u32,     // slot(): physical rows of a ring
  dim: u32,     // channels per row (a multiple of 32)
  batches: u32, // matrices
  fstride: u32, // f32 rows between matrices
  cstride: u32, // cache rows between matrices
  f0: u32,      // f32 row of row 0 of matrix 0
}

@group(0) @binding(0) var<uniform> p: Params;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

fn slot(j: u32) -> u32 {
  if (j < p.cap) {
    return j; // also covers cap == sink, where the ring is empty
  }
  return p.sink + (j - p.sink) % (p.cap - p.sink);
}

fn cacheRow(b: u32, t: u32) -> u32 {
  return b * p.cstride + slot(p.rows + t);
}

fn f32Row(b: u32, t: u32) -> u32 {
  return b * p.fstride + p.f0 + t;
}
