// f32 <-> f16 conversion of flat arrays, with round-to-nearest-even done in
// integer arithmetic: WGSL lets pack2x16float round either way, and some
// adapters flush f16 subnormals, so the bit-exact path is the portable one.
//
// Bindings (both entry points): @binding(0) uniform Params; then
//   x (read) array<u32>: the input's raw words (f32 bits, or two f16 per word, low half first)
//   y (read_write) array<u32>: the output's raw words
//   f32_to_f16: y[n] f16 = x[n] f32; one invocation per output word (2 halves).
//               For odd n the high half of the last word is left as it was.
//   f16_to_f32: y[n] f32 = x[n] f16 (exact); one invocation per output element.
// Dispatch: engine.Grid(invocations, WG). Constants: WG.
// Inf and NaN convert to inf and NaN; f32 values past the f16 range become inf.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// half returns the binary16 bits nearest to the f32 bits b (ties to even).
fn half(b: u32) -> u32 {
  let sign = (b >> 16u) & 0x8000u;
  let e = (b >> 23u) & 0xffu;
  let m = b & 0x7fffffu;
  if (e == 0xffu) {
    return sign | select(0x7c00u, 0x7e00u, m != 0u);
  }
  let he = i32(e) - 112; // rebias 127 -> 15
  if (he >= 31) {
    return sign | 0x7c00u;
  }
  if (he <= 0) {
    if (he < -10) {
      return sign; // below half the smallest subnormal
    }
    let mm = m | 0x800000u;
    let shift = u32(14 - he);
    let h = mm >> shift;
    let rem = mm & ((1u << shift) - 1u);
    let mid = 1u << (shift - 1u);
    return sign | (h + select(0u, 1u, rem > mid || (rem == mid && (h & 1u) == 1u)));
  }
  let h = (u32(he) << 10u) | (m >> 13u);
  let rem = m & 0x1fffu;
  // a carry out of the mantissa correctly bumps the exponent (up to inf)
  return sign | (h + select(0u, 1u, rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)));
}

// single returns the f32 bits of the binary16 bits h.
fn single(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) {
    return sign | 0x7f800000u | (m << 13u);
  }
  if (e == 0u) {
    if (m == 0u) {
      return sign;
    }
    let lead = firstLeadingBit(m); // value = m * 2^-24 = 1.f * 2^(lead-24)
    return sign | ((lead + 103u) << 23u) | ((m << (23u - lead)) & 0x7fffffu);
  }
  return sign | ((e + 112u) << 23u) | (m << 13u);
}

@compute @workgroup_size(WG)
fn f32_to_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let w = index(wid, nwg, lid);
  let i = 2u * w;
  if (i >= p.n) {
    return;
  }
  let lo = half(x[i]);
  if (i + 1u < p.n) {
    y[w] = lo | (half(x[i + 1u]) << 16u);
  } else {
    y[w] = (y[w] & 0xffff0000u) | lo;
  }
}

@compute @workgroup_size(WG)
fn f16_to_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i >= p.n) {
    return;
  }
  y[i] = single((x[i >> 1u] >> (16u * (i & 1u))) & 0xffffu);
}
