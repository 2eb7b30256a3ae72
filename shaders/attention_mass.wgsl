// Attention mass: how much attention each cached key received, for heavy-hitter (H2O)
// eviction (kvcache's h2o policy). Runs after attention.wgsl's or attention_vec4.wgsl's
// passes of one query chunk, on their scratch, so the default attention path is
// unchanged; the launcher is Ops.AttentionMass.
//
//   massnorm: per (query, head): the global max M and the normaliser 1/L of the softmax
//             over all chunks, from the per-chunk stats (m, l); written to slots 2 and 3
//             (unused by attention) of the query head's first chunk stats.
//   accumulate: per (KV head g, visible key kk): mass[g*cap + kk] +=
//             sum over the chunk's queries t that see kk and the G query heads h of g of
//             p(t, h, kk) = e(t, h, kk) * exp(m_c - M) / L, e = exp(s - m_c) as softmax left
//             it in place (c = kk / C).
// Without a window the visible key kk is cache row kk (the launcher refuses windows), so
// one invocation owns one row and the read-modify-write needs no atomics.
//
// Bindings: @binding(0) uniform Params (attention's), @binding(1) sc (read_write) the
// attention scratch, @binding(2) mass (read_write) f32 [kv_heads, cap].
// Constants: WG, C (keys per chunk of the attention variant that ran), G (query heads per
// KV head).
// Dispatch: massnorm Grid(tc*heads, WG); accumulate Grid(kv_heads*stride, WG).

#include "attention_params.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> sc: array<f32>;
@group(0) @binding(2) var<storage, read_write> mass: array<f32>;

#include "attention_common.wgsl"

@compute @workgroup_size(WG)
fn massnorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let th = flat(wid, nwg, lid);
  if (th >= p.tc * p.heads) {
    return;
  }
  let t = th / p.heads;
  let nc = (span(p.t0 + t).n + C - 1u) / C;
  let st = p.st_off + 4u * th * p.chunks;
  var m = sc[st];
  for (var c = 1u; c < nc; c++) {
    m = max(m, sc[st + 4u * c]);
  }
  var l = 0.0;
  for (var c = 0u; c < nc; c++) {
    l += exp(sc[st + 4u * c] - m) * sc[st + 4u * c + 1u];
  }
  sc[st + 2u] = m;
  sc[st + 3u] = 1.0 / l;
}

@compute @workgroup_size(WG)
fn accumulate(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  let g = i / p.stride;
  if (g >= p.kv_heads) {
    return;
  }
  let kk = i - g * p.stride;
  let c = kk / C;
  var acc = 0.0;
  for (var t = 0u; t < p.tc; t++) {
    if (kk >= span(p.t0 + t).n) {
      continue;
    }
    for (var h = 0u; h < G; h++) {
      let th = t * p.heads + g * G + h;
      let st = p.st_off + 4u * th * p.chunks;
      acc += sc[p.s_off + th * p.stride + kk] * exp(sc[st + 4u * c] - sc[st + 2u]) * sc[st + 3u];
    }
  }
  if (kk < p.cap) {
    mass[g * p.cap + kk] += acc;
  }
}
