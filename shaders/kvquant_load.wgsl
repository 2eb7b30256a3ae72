// Dequantises rows of a q8_0 or q4_0 KV cache into f32 (the compressor's
// read of a quantised cache): cache row b*cstride + slot(rows + t) of matrix
// b becomes f32 row b*fstride + t (kvquant_rows.wgsl), x = d * q per ggml's
// block layout (kvquant_decode.wgsl).
//
// Bindings: @binding(0) uniform Params; then
//   cache (read) array<u32>: the quantised rows
//   dst (read_write) f32 [batches*fstride rows, dim]
// Dispatch: engine.Grid(batches * T * dim, WG), one invocation per element.
// Constants: WG, QT (2 q8_0, 3 q4_0).

#include "kvquant_rows.wgsl"
#include "kvquant_decode.wgsl"

@group(0) @binding(1) var<storage, read> cache: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn dequantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= p.batches * p.t * p.dim) {
    return;
  }
  let c = i % p.dim;
  let bt = i / p.dim;
  let t = bt % p.t;
  let b = bt / p.t;
  let e = cacheRow(b, t) * p.dim + c;
  dst[f32Row(b, t) * p.dim + c] = qDecode(QT, e, cache[qScaleAt(QT, e) >> 2u], cache[qByteAt(QT, e) >> 2u]);
}
