// Causal multi-head attention with grouped KV heads over a cache that holds
// keys before RoPE: each kernel rotates keys and queries on the fly with a
// precomputed table, so one kernel serves full, FreqKV and sliding-window
// caches. Decode (T = 1) and prefill chunks (T > 1) alike.
//
// Visibility and positions. Query t is logical row r = rows + t. It sees the
// sinks [0, min(sink, r+1)) and the rows [lo, r], lo = max(sink, r+1-window)
// (lo = sink without a window). Its n visible keys, listed in that order,
// have positions 0..n-1 (sinks keep theirs, window rows follow them), and
// the query has position n-1. Logical row j lives at physical row
//   slot(j) = j < sink ? j : sink + (j - sink) % (cap - sink).
//
// Passes (all barrier-free; one invocation per unit of independent work):
//   qrope:    qr = rope(q, n-1) * scale            [tc, H, D] in scratch
//   scores:   s[t, h, k] = qr[t, h] . rope(K[slot(j_k)], k)  per (t, key),
//             the rotated key shared by the G query heads of its KV head
//   softmax:  per (t, h, chunk of C keys): m = max s, p = exp(s - m) in
//             place, l = sum p
//   values:   per (t, KV head, pair of dims, chunk): sum p * V for G heads
//   combine:  per (t, h, dim): rescale the chunks to the global max and
//             normalise (split-K "flash decoding" merge)
// The launcher runs the passes once per chunk of tc queries, so the score
// storage stays bounded for long prefills.
//
// Bindings (all entry points): @binding(0) uniform Params; then
//   q (read) f32 [T, H*D], not rotated
//   k, v (read) array<u32>: cache rows [cap, KVH*D], f32 bits, two f16 per word,
//     or q8_0/q4_0 blocks of 32 channels (kvquant_decode.wgsl), dequantised on read
//   rope (read) f32 [maxPos, RD]: (cos, sin) of pair i at position pos at pos*RD + 2i
//   out (read_write) f32 [T, H*D]
//   sc (read_write) f32 scratch: qr [tc, H, D] at q_off, scores [tc, H, stride]
//     at s_off, chunk stats (m, l, -, -) [tc, H, chunks, 4] at st_off, chunk
//     partial sums [tc, H, chunks, D] at part_off
// attention_vec4.wgsl is the same computation, vectorised for head dims that
// are multiples of 16; this file serves the other shapes.
// Constants: WG, D (head dim), RD (rotary dims), G (query heads per KV head),
//   C (keys per softmax/values chunk), NEOX (bool), KT and VT (key and value
//   storage: 0 f32, 1 f16, 2 q8_0, 3 q4_0), CAP (f32: the attention-logit
//   softcap, 0 for none).

#include "attention_params.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<u32>;
@group(0) @binding(3) var<storage, read> v: array<u32>;
@group(0) @binding(4) var<storage, read> rope: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> sc: array<f32>;

const HALF = RD / 2u;

#include "attention_common.wgsl"
#include "kvquant_decode.wgsl"

fn kWord(i: u32) -> u32 { return k[i]; }
fn vWord(i: u32) -> u32 { return v[i]; }

// capScore is Gemma 2's attention-logit softcapping, CAP*tanh(s/CAP), when
// CAP > 0 (the argument clamped where f32 tanh is already ±1).
fn capScore(s: f32) -> f32 {
  if (CAP > 0.0) {
    return CAP * tanh(clamp(s / CAP, -15.0, 15.0));
  }
  return s;
}

fn kAt(e: u32) -> f32 {
  if (KT >= 2u) {
    return qDecode(KT, e, kWord(qScaleAt(KT, e) >> 2u), kWord(qByteAt(KT, e) >> 2u));
  }
  if (KT == 1u) {
    return unpack2x16float(k[e >> 1u])[e & 1u];
  }
  return bitcast<f32>(k[e]);
}

fn vAt(e: u32) -> f32 {
  if (VT >= 2u) {
    return qDecode(VT, e, vWord(qScaleAt(VT, e) >> 2u), vWord(qByteAt(VT, e) >> 2u));
  }
  if (VT == 1u) {
    return unpack2x16float(v[e >> 1u])[e & 1u];
  }
  return bitcast<f32>(v[e]);
}

// kPair loads cache elements e and e+1 (e even).
fn kPair(e: u32) -> vec2<f32> {
  if (KT >= 2u) {
    return vec2<f32>(kAt(e), kAt(e + 1u));
  }
  if (KT == 1u) {
    return unpack2x16float(k[e >> 1u]);
  }
  return vec2<f32>(bitcast<f32>(k[e]), bitcast<f32>(k[e + 1u]));
}

fn vPair(e: u32) -> vec2<f32> {
  if (VT >= 2u) {
    return vec2<f32>(vAt(e), vAt(e + 1u));
  }
  if (VT == 1u) {
    return unpack2x16float(v[e >> 1u]);
  }
  return vec2<f32>(bitcast<f32>(v[e]), bitcast<f32>(v[e + 1u]));
}

// pairAt gives the indices within a head of rotary pair i.
fn pairAt(i: u32) -> vec2<u32> {
  if (NEOX) {
    return vec2<u32>(i, i + HALF);
  }
  return vec2<u32>(2u * i, 2u * i + 1u);
}

// qrope: one invocation per (query, head, job); a job rotates one pair or copies one tail dim.
@compute @workgroup_size(WG)
fn qrope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  let jobs = HALF + D - RD;
  let th = i / jobs; // tc index * heads + head
  if (th >= p.tc * p.heads) {
    return;
  }
  let job = i - th * jobs;
  let t = th / p.heads;
  let src = (p.t0 + t) * p.heads * D + (th - t * p.heads) * D;
  let dst = p.q_off + th * D;
  if (job >= HALF) {
    let d = RD + job - HALF;
    sc[dst + d] = q[src + d] * p.scale;
    return;
  }
  let ab = pairAt(job);
  let cs = (span(p.t0 + t).n - 1u) * RD + 2u * job;
  let c = rope[cs];
  let s = rope[cs + 1u];
  let a = q[src + ab.x];
  let b = q[src + ab.y];
  sc[dst + ab.x] = (a * c - b * s) * p.scale;
  sc[dst + ab.y] = (a * s + b * c) * p.scale;
}

// scores: x over visible keys, y over the chunk's queries.
@compute @workgroup_size(WG)
fn scores(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let kk = wid.x * WG + lid.x;
  let t = wid.y;
  let sp = span(p.t0 + t);
  if (kk >= sp.n) {
    return;
  }
  let width = p.kv_heads * D;
  let rowBase = row(sp, kk) * width;
  let cs = kk * RD;
  for (var g = 0u; g < p.kv_heads; g++) {
    let kb = rowBase + g * D;
    let qb = p.q_off + (t * p.heads + g * G) * D;
    // an explicit initialiser: naga hoists a bare declaration out of the
    // loop and zeroes it only once
    var acc = array<f32, G>();
    for (var i = 0u; i < HALF; i++) {
      let ab = pairAt(i);
      var kv: vec2<f32>;
      if (NEOX) {
        kv = vec2<f32>(kAt(kb + ab.x), kAt(kb + ab.y));
      } else {
        kv = kPair(kb + ab.x);
      }
      let c = rope[cs + 2u * i];
      let s = rope[cs + 2u * i + 1u];
      let ka = kv.x * c - kv.y * s;
      let kr = kv.x * s + kv.y * c;
      for (var h = 0u; h < G; h++) {
        acc[h] += sc[qb + h * D + ab.x] * ka + sc[qb + h * D + ab.y] * kr;
      }
    }
    for (var d = RD; d < D; d += 2u) {
      let kv = kPair(kb + d);
      for (var h = 0u; h < G; h++) {
        acc[h] += sc[qb + h * D + d] * kv.x + sc[qb + h * D + d + 1u] * kv.y;
      }
    }
    for (var h = 0u; h < G; h++) {
      sc[p.s_off + ((t * p.heads + g * G + h) * p.stride) + kk] = capScore(acc[h]);
    }
  }
}

// softmax: one invocation per (query, head, chunk).
@compute @workgroup_size(WG)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  let th = i / p.chunks;
  if (th >= p.tc * p.heads) {
    return;
  }
  let c = i - th * p.chunks;
  let n = span(p.t0 + th / p.heads).n;
  let k0 = c * C;
  if (k0 >= n) {
    return; // combine skips chunks past n
  }
  let k1 = min(k0 + C, n);
  let base = p.s_off + th * p.stride;
  var m = sc[base + k0];
  for (var kk = k0 + 1u; kk < k1; kk++) {
    m = max(m, sc[base + kk]);
  }
  var l = 0.0;
  for (var kk = k0; kk < k1; kk++) {
    let e = exp(sc[base + kk] - m);
    sc[base + kk] = e;
    l += e;
  }
  let st = p.st_off + 4u * (th * p.chunks + c);
  sc[st] = m;
  sc[st + 1u] = l;
}

// values: one invocation per (query, KV head, chunk, pair of dims), dims fastest.
@compute @workgroup_size(WG)
fn values(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  let pairs = D / 2u;
  let rest = i / pairs;
  if (rest >= p.tc * p.kv_heads * p.chunks) {
    return;
  }
  let d = 2u * (i - rest * pairs);
  let c = rest % p.chunks;
  let tg = rest / p.chunks; // tc index * kv_heads + kv head
  let t = tg / p.kv_heads;
  let g = tg - t * p.kv_heads;
  let sp = span(p.t0 + t);
  let k0 = c * C;
  if (k0 >= sp.n) {
    return;
  }
  let k1 = min(k0 + C, sp.n);
  let width = p.kv_heads * D;
  let pb = p.s_off + (t * p.heads + g * G) * p.stride;
  var acc = array<vec2<f32>, G>();
  for (var kk = k0; kk < k1; kk++) {
    let vv = vPair(row(sp, kk) * width + g * D + d);
    for (var h = 0u; h < G; h++) {
      acc[h] += sc[pb + h * p.stride + kk] * vv;
    }
  }
  for (var h = 0u; h < G; h++) {
    let o = p.part_off + ((t * p.heads + g * G + h) * p.chunks + c) * D + d;
    sc[o] = acc[h].x;
    sc[o + 1u] = acc[h].y;
  }
}

// combine: one invocation per (query, head, dim).
@compute @workgroup_size(WG)
fn combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  let th = i / D;
  if (th >= p.tc * p.heads) {
    return;
  }
  let d = i - th * D;
  let t = th / p.heads;
  let nc = (span(p.t0 + t).n + C - 1u) / C;
  let st = p.st_off + 4u * th * p.chunks;
  var m = sc[st];
  for (var c = 1u; c < nc; c++) {
    m = max(m, sc[st + 4u * c]);
  }
  var l = 0.0;
  var o = 0.0;
  for (var c = 0u; c < nc; c++) {
    let w = exp(sc[st + 4u * c] - m);
    l += w * sc[st + 4u * c + 1u];
    o += w * sc[p.part_off + (th * p.chunks + c) * D + d];
  }
  out[(p.t0 + t) * p.heads * D + (th - t * p.heads) * D + d] = o / l;
}
