// Quantises f32 rows into a q8_0 or q4_0 KV cache (the quantised twin of
// kvstore.wgsl, and the compressor's write-back): row t of matrix b goes to
// cache row b*cstride + slot(rows + t) (kvquant_rows.wgsl), as ggml's blocks
// of 32 consecutive channels (kvquant_decode.wgsl), with ggml's reference
// rounding (quantize_row_q8_0_ref / quantize_row_q4_0_ref):
//   q8_0: d = max|x| / 127, q = round-half-away-from-zero(x / d)
//   q4_0: mx = the x of largest |x|, d = mx / -8, q = min(15, trunc(x / d + 8.5))
// The quotient uses the f32 d (1/d, 0 for an all-zero block); the stored
// scale is d rounded to f16 (pack2x16float).
//
// One invocation per block. Blocks (34 or 18 bytes) start on even bytes and
// share words with their neighbours, which the same dispatch may be storing:
// a partly covered word is written with atomicAnd/atomicOr on its own bytes
// only, a fully covered one with atomicStore.
//
// Bindings: @binding(0) uniform Params; then
//   src (read) f32 [batches*fstride rows, dim]
//   cache (read_write) array<atomic<u32>>: the quantised rows
// Dispatch: engine.Grid(batches * T * dim/32, WG). Constants: WG, QT (2 q8_0, 3 q4_0).
// The launcher guarantees no two rows of one call share a slot.

#include "kvquant_rows.wgsl"
#include "kvquant_decode.wgsl"

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> cache: array<atomic<u32>>;

const BB = 34u - 16u * (QT - 2u); // bytes per block: 34 (q8_0), 18 (q4_0)

// ggml's roundf: halves away from zero (WGSL's round() goes to even).
fn roundAway(x: f32) -> f32 {
  return sign(x) * floor(abs(x) + 0.5);
}

@compute @workgroup_size(WG)
fn quantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  let per = p.dim / 32u;
  if (i >= p.batches * p.t * per) {
    return;
  }
  let blk = i % per;
  let bt = i / per;
  let t = bt % p.t;
  let b = bt / p.t;
  let s = f32Row(b, t) * p.dim + blk * 32u;
  var x: array<f32, 32>;
  var amax = 0.0;
  var mx = 0.0;
  for (var j = 0u; j < 32u; j++) {
    x[j] = src[s + j];
    if (abs(x[j]) > amax) {
      amax = abs(x[j]);
      mx = x[j];
    }
  }
  var d = amax / 127.0;
  if (QT == 3u) {
    d = mx / -8.0;
  }
  var id = 0.0;
  if (d != 0.0) {
    id = 1.0 / d;
  }
  // the block's bytes as a little-endian image of up to 10 words from word w0
  let a0 = (cacheRow(b, t) * per + blk) * BB;
  let w0 = a0 >> 2u;
  var acc: array<u32, 10>;
  var msk: array<u32, 10>;
  for (var k = 0u; k < 10u; k++) {
    acc[k] = 0u;
    msk[k] = 0u;
  }
  let dh = pack2x16float(vec2<f32>(d, 0.0)) & 0xffffu;
  for (var k = 0u; k < BB; k++) {
    var v = 0u;
    if (k < 2u) {
      v = (dh >> (8u * k)) & 0xffu;
    } else if (QT == 2u) {
      v = bitcast<u32>(i32(roundAway(x[k - 2u] * id))) & 0xffu;
    } else {
      let lo = min(15u, u32(x[k - 2u] * id + 8.5));
      let hi = min(15u, u32(x[k + 14u] * id + 8.5));
      v = lo | (hi << 4u);
    }
    let a = a0 + k;
    let wi = (a >> 2u) - w0;
    let sh = (a & 3u) * 8u;
    acc[wi] |= v << sh;
    msk[wi] |= 0xffu << sh;
  }
  let nw = ((a0 + BB - 1u) >> 2u) - w0 + 1u;
  for (var k = 0u; k < nw; k++) {
    if (msk[k] == 0xffffffffu) {
      atomicStore(&cache[w0 + k], acc[k]);
    } else {
      atomicAnd(&cache[w0 + k], ~msk[k]);
      atomicOr(&cache[w0 + k], acc[k]);
    }
  }
}
