// Stores T new rows of keys or values (f32 [T, dim]) into a KV cache
// [cap, dim] at the physical slots of logical rows rows..rows+T-1:
//   slot(j) = j                                  if j < sink
//           = sink + (j - sink) % (cap - sink)   otherwise
// Rows below sink are pinned (attention sinks) and the rest form a ring, so
// a sliding-window cache wraps; caches that never wrap have slot(j) = j.
//
// Bindings (both entry points): @binding(0) uniform Params; then
//   src (read) f32 [T, dim]
//   cache (read_write) array<u32>: f32 bits (store_f32) or two f16 per word (store_f16)
//   store_f32: one invocation per element of src.
//   store_f16: one invocation per pair of elements (dim even), packed with
//              pack2x16float (core WGSL, no shader-f16 needed).
// Dispatch: engine.Grid(invocations, WG). Constants: WG.
// The launcher guarantees no two rows of one call share a slot.

struct Params {
  t: u32,
  rows: u32,
  sink: u32,
  cap: u32,
  dim: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> cache: array<u32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

fn slot(j: u32) -> u32 {
  if (j < p.cap) {
    return j; // also covers cap == sink, where the ring is empty
  }
  return p.sink + (j - p.sink) % (p.cap - p.sink);
}

@compute @workgroup_size(WG)
fn store_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= p.t * p.dim) {
    return;
  }
  let t = i / p.dim;
  let c = i - t * p.dim;
  cache[slot(p.rows + t) * p.dim + c] = bitcast<u32>(src[i]);
}

@compute @workgroup_size(WG)
fn store_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let w = index(wid, nwg, lid);
  let words = p.dim / 2u;
  if (w >= p.t * words) {
    return;
  }
  let t = w / words;
  let c = w - t * words;
  let s = t * p.dim + 2u * c;
  cache[slot(p.rows + t) * words + c] = pack2x16float(vec2<f32>(src[s], src[s + 1u]));
}
