// The attention of attention.wgsl (same passes, rules and parameters),
// vectorised for head dims that are multiples of 16 (every LLaMA-family
// model). On CPU adapters (lavapipe) every storage load is a loop over the
// SIMD lanes, costing about the same per component whatever the address
// (uniform ones included), and private arrays indexed in loops that are not
// unrolled spill to per-lane scratch just as slowly. So the kernels count
// loads: caches, table, queries and scratch are read as vec4 words; a scores
// invocation takes 8 consecutive keys of one KV head, so each query word it
// loads serves 8 keys and its accumulators stay small arrays over the G
// query heads; a values invocation takes 16 dims of one KV head for its G
// heads, so each probability word serves 16 dims and each value word G heads.
//
// Scratch layout (f32 elements, every region a multiple of 4): qr [tc, H, D]
// at q_off; scores [tc, H, stride] at s_off (stride a multiple of 8); chunk
// stats (m, l, -, -) [tc, H, chunks, 4] at st_off; partial sums
// [tc, H, chunks, D] at part_off. Key lanes of a block past a query's n are
// computed on a repeated valid row and get probability 0.
//
// Bindings: as attention.wgsl, with k, v as array<vec4<u32>> (8 halves or 4
// f32 per word, or q8_0/q4_0 blocks read word by word) and q, rope, out, sc as array<vec4<f32>>.
// With PRE (a prefill call on a cache without a window, where key kk is cache row kk at
// position kk for every query), krope first rotates rows [0, kr_rows) once into the scratch
// at kr_off (f32 [kr_rows, KVH*D]), and scores reads those instead of rotating every key
// for every query: a chunk of T queries rotated each key T times.
// Dispatch: krope (PRE only, once per call) over (row, KV head, octet job); then per query
// chunk: qrope over (query, head, octet job); scores
// over x = blocks of 8 keys, y = (query, KV head); softmax over (query, head,
// chunk); values over (query, KV head, chunk, 16 dims); combine over (query,
// head, 4 dims).
// Constants: WG, D (multiple of 16), RD (multiple of 8; of 16 with NEOX), G,
//   KVH (KV heads), C (chunk keys, a multiple of 8), NEOX, KT, VT (as
//   attention.wgsl), ROT_JOBS (see qrope), CAP (f32: the attention-logit softcap,
//   0 for none), PRE (bool, see above).

#include "attention_params.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> rope: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> sc: array<vec4<f32>>;

const H = KVH * G;
const HALF = RD / 2u;
const WIDTH = KVH * D; // elements per cache row

#include "attention_common.wgsl"
#include "kvquant_decode.wgsl"

// capScores is Gemma 2's attention-logit softcapping, CAP*tanh(s/CAP), when
// CAP > 0 (the argument clamped where f32 tanh is already ±1).
fn capScores(s: vec4<f32>) -> vec4<f32> {
  if (CAP > 0.0) {
    return CAP * tanh(clamp(s / CAP, vec4<f32>(-15.0), vec4<f32>(15.0)));
  }
  return s;
}

// nextRow is the physical row of visible key kk+1, given r, that of key kk,
// and slotLo = row(sp, sp.ns): consecutive keys are consecutive rows but at
// the sink/window seam and the ring's end. (No division in the key loops:
// CPU adapters scalarise vector division.)
fn nextRow(sp: Span, slotLo: u32, kk: u32, r: u32) -> u32 {
  let n = r + 1u;
  return select(select(n, p.sink, n == p.cap), slotLo, kk + 1u == sp.ns);
}

// Oct is 8 consecutive elements.
struct Oct {
  a: vec4<f32>,
  b: vec4<f32>,
}

fn unpack4(w: vec2<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

fn kWord(i: u32) -> u32 { return k[i >> 2u][i & 3u]; }
fn vWord(i: u32) -> u32 { return v[i >> 2u][i & 3u]; }

// qOct decodes elements e..e+7 of a quantised cache (e a multiple of 8, so one block)
// from sw, the word holding the block's scale, and w0..w2, the words from the one holding
// the first of the 8 bytes (q8_0: one value each; q4_0: the low or high nibbles) on: the
// bytes start on an even address, so they span two words or straddle three.
fn qOct(t: u32, e: u32, sw: u32, w0: u32, w1: u32, w2: u32) -> Oct {
  let d = unpack2x16float(sw)[(qScaleAt(t, e) >> 1u) & 1u];
  var lo = w0;
  var hi = w1;
  if ((qByteAt(t, e) & 3u) != 0u) {
    lo = (w0 >> 16u) | (w1 << 16u);
    hi = (w1 >> 16u) | (w2 << 16u);
  }
  // vector ops only: a private array indexed in a loop spills on CPU adapters
  if (t == 2u) {
    let sh = vec4<u32>(24u, 16u, 8u, 0u);
    return Oct(vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(lo) << sh) >> vec4<u32>(24u)) * d,
               vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(hi) << sh) >> vec4<u32>(24u)) * d);
  }
  let sh = vec4<u32>(0u, 8u, 16u, 24u) + select(0u, 4u, (e % 32u) >= 16u);
  return Oct((vec4<f32>((vec4<u32>(lo) >> sh) & vec4<u32>(15u)) - 8.0) * d,
             (vec4<f32>((vec4<u32>(hi) >> sh) & vec4<u32>(15u)) - 8.0) * d);
}

// kqOct and vqOct load the words qOct needs (the third only when the bytes straddle it,
// so no word past the block is read).
fn kqOct(e: u32) -> Oct {
  let a = qByteAt(KT, e);
  let w = a >> 2u;
  return qOct(KT, e, kWord(qScaleAt(KT, e) >> 2u), kWord(w), kWord(w + 1u), kWord(select(w, w + 2u, (a & 3u) != 0u)));
}

fn vqOct(e: u32) -> Oct {
  let a = qByteAt(VT, e);
  let w = a >> 2u;
  return qOct(VT, e, vWord(qScaleAt(VT, e) >> 2u), vWord(w), vWord(w + 1u), vWord(select(w, w + 2u, (a & 3u) != 0u)));
}

// kOct loads cache elements e..e+7 (e a multiple of 8).
fn kOct(e: u32) -> Oct {
  if (KT >= 2u) {
    return kqOct(e);
  }
  if (KT == 1u) {
    let w = k[e / 8u];
    return Oct(unpack4(w.xy), unpack4(w.zw));
  }
  return Oct(bitcast<vec4<f32>>(k[e / 4u]), bitcast<vec4<f32>>(k[e / 4u + 1u]));
}

fn vOct(e: u32) -> Oct {
  if (VT >= 2u) {
    return vqOct(e);
  }
  if (VT == 1u) {
    let w = v[e / 8u];
    return Oct(unpack4(w.xy), unpack4(w.zw));
  }
  return Oct(bitcast<vec4<f32>>(v[e / 4u]), bitcast<vec4<f32>>(v[e / 4u + 1u]));
}

// rotAdj rotates the adjacent pairs of x (x0,x1),(x2,x3) by the table
// words (c0,s0,c1,s1).
fn rotAdj(x: vec4<f32>, cs: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(x.x * cs.x - x.y * cs.y, x.x * cs.y + x.y * cs.x,
                   x.z * cs.z - x.w * cs.w, x.z * cs.w + x.w * cs.z);
}

// cosines and sines of four consecutive pairs from two table words
fn cos4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(a.x, a.z, b.x, b.z);
}

fn sin4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(a.y, a.w, b.y, b.w);
}

// Jobs per head in qrope: ROT_JOBS octets of rotated pairs (RD/8, or RD/16
// with NEOX, whose jobs take an octet and its partner), then octets of the tail.
const JOBS = ROT_JOBS + (D - RD) / 8u;

// qrope: one invocation per (query, head, job).
@compute @workgroup_size(WG)
fn qrope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  let th = i / JOBS;
  if (th >= p.tc * H) {
    return;
  }
  let job = i - th * JOBS;
  let t = th / H;
  let src = ((p.t0 + t) * H + (th - t * H)) * (D / 4u);
  let dst = p.q_off / 4u + th * (D / 4u);
  let s = p.scale;
  if (job >= ROT_JOBS) {
    let e = (RD + (job - ROT_JOBS) * 8u) / 4u;
    sc[dst + e] = q[src + e] * s;
    sc[dst + e + 1u] = q[src + e + 1u] * s;
    return;
  }
  let tab = (span(p.t0 + t).n - 1u) * (RD / 4u);
  if (NEOX) {
    // elements 8j..8j+7 pair with 8j+HALF..; pairs 8j..8j+7 use table words 4j..4j+3
    let e = 2u * job;
    let h = HALF / 4u;
    let c0 = cos4(rope[tab + 4u * job], rope[tab + 4u * job + 1u]);
    let s0 = sin4(rope[tab + 4u * job], rope[tab + 4u * job + 1u]);
    let c1 = cos4(rope[tab + 4u * job + 2u], rope[tab + 4u * job + 3u]);
    let s1 = sin4(rope[tab + 4u * job + 2u], rope[tab + 4u * job + 3u]);
    let a0 = q[src + e];
    let a1 = q[src + e + 1u];
    let b0 = q[src + e + h];
    let b1 = q[src + e + h + 1u];
    sc[dst + e] = (a0 * c0 - b0 * s0) * s;
    sc[dst + e + 1u] = (a1 * c1 - b1 * s1) * s;
    sc[dst + e + h] = (a0 * s0 + b0 * c0) * s;
    sc[dst + e + h + 1u] = (a1 * s1 + b1 * c1) * s;
  } else {
    let e = 2u * job;
    sc[dst + e] = rotAdj(q[src + e], rope[tab + e]) * s;
    sc[dst + e + 1u] = rotAdj(q[src + e + 1u], rope[tab + e + 1u]) * s;
  }
}

// krope: one invocation per (cache row, KV head, job), jobs as in qrope: writes the row's
// key rotated to its position (the row, in a cache without a window) to the scratch.
@compute @workgroup_size(WG)
fn krope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  let rg = i / JOBS;
  if (rg >= p.kr_rows * KVH) {
    return;
  }
  let job = i - rg * JOBS;
  let r = rg / KVH;
  let src = r * WIDTH + (rg - r * KVH) * D; // element index of the row's head in the cache
  let dst = p.kr_off / 4u + src / 4u;
  if (job >= ROT_JOBS) {
    let e = RD + (job - ROT_JOBS) * 8u;
    let a = kOct(src + e);
    sc[dst + e / 4u] = a.a;
    sc[dst + e / 4u + 1u] = a.b;
    return;
  }
  let tab = r * (RD / 4u);
  let e = 8u * job;
  let a = kOct(src + e);
  if (NEOX) {
    // octet job of the first half and its partner at e + HALF: table words 4j..4j+3
    let b = kOct(src + e + HALF);
    let t0 = rope[tab + 4u * job];
    let t1 = rope[tab + 4u * job + 1u];
    let t2 = rope[tab + 4u * job + 2u];
    let t3 = rope[tab + 4u * job + 3u];
    let c0 = cos4(t0, t1);
    let s0 = sin4(t0, t1);
    let c1 = cos4(t2, t3);
    let s1 = sin4(t2, t3);
    sc[dst + e / 4u] = a.a * c0 - b.a * s0;
    sc[dst + e / 4u + 1u] = a.b * c1 - b.b * s1;
    sc[dst + (e + HALF) / 4u] = a.a * s0 + b.a * c0;
    sc[dst + (e + HALF) / 4u + 1u] = a.b * s1 + b.b * c1;
  } else {
    sc[dst + e / 4u] = rotAdj(a.a, rope[tab + 2u * job]);
    sc[dst + e / 4u + 1u] = rotAdj(a.b, rope[tab + 2u * job + 1u]);
  }
}

// scores: one invocation per block of 8 visible keys (x) and (query, KV
// head) (y): each query word loaded serves 8 keys.
@compute @workgroup_size(WG)
fn scores(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let k0 = 8u * (wid.x * WG + lid.x);
  let t = wid.y / KVH;
  let g = wid.y - t * KVH;
  let sp = span(p.t0 + t);
  if (k0 >= sp.n) {
    return;
  }
  var rows: array<u32, 8>;
  var tabs: array<u32, 8>;
  let slotLo = row(sp, sp.ns);
  var r = row(sp, k0);
  for (var j = 0u; j < 8u; j++) {
    let kk = min(k0 + j, sp.n - 1u); // lanes past n repeat the last key
    if (j > 0u && k0 + j < sp.n) {
      r = nextRow(sp, slotLo, kk - 1u, r);
    }
    rows[j] = r * WIDTH + g * D;
    tabs[j] = kk * (RD / 4u);
  }
  let qb = p.q_off / 4u + (t * H + g * G) * (D / 4u);
  var lo4 = array<vec4<f32>, G>(); // scores of keys k0..k0+3
  var hi4 = array<vec4<f32>, G>(); // and of k0+4..k0+7
  for (var o = 0u; o < D / 8u; o++) {
    let e = 8u * o;
    // with PRE the keys come rotated: every octet is a plain one
    let rotated = !PRE && e < select(RD, HALF, NEOX);
    if (NEOX && !PRE && !rotated && e < RD) {
      continue; // second halves are handled with their partners
    }
    // x[j]: key j's octet at e, rotated; y[j]: its partner octet at e + HALF (NEOX)
    var x: array<Oct, 8>;
    var y: array<Oct, 8>;
    for (var j = 0u; j < 8u; j++) {
      if (PRE) {
        let kw = p.kr_off / 4u + (rows[j] + e) / 4u;
        x[j] = Oct(sc[kw], sc[kw + 1u]);
        continue;
      }
      let a = kOct(rows[j] + e);
      if (!rotated) {
        x[j] = a;
      } else if (NEOX) {
        let b = kOct(rows[j] + e + HALF);
        let t0 = rope[tabs[j] + 4u * o];
        let t1 = rope[tabs[j] + 4u * o + 1u];
        let t2 = rope[tabs[j] + 4u * o + 2u];
        let t3 = rope[tabs[j] + 4u * o + 3u];
        let c0 = cos4(t0, t1);
        let s0 = sin4(t0, t1);
        let c1 = cos4(t2, t3);
        let s1 = sin4(t2, t3);
        x[j] = Oct(a.a * c0 - b.a * s0, a.b * c1 - b.b * s1);
        y[j] = Oct(a.a * s0 + b.a * c0, a.b * s1 + b.b * c1);
      } else {
        x[j] = Oct(rotAdj(a.a, rope[tabs[j] + 2u * o]), rotAdj(a.b, rope[tabs[j] + 2u * o + 1u]));
      }
    }
    for (var h = 0u; h < G; h++) {
      let qh = qb + h * (D / 4u) + e / 4u;
      let qa = sc[qh];
      let qc = sc[qh + 1u];
      lo4[h] += vec4<f32>(dot(qa, x[0].a) + dot(qc, x[0].b), dot(qa, x[1].a) + dot(qc, x[1].b),
                          dot(qa, x[2].a) + dot(qc, x[2].b), dot(qa, x[3].a) + dot(qc, x[3].b));
      hi4[h] += vec4<f32>(dot(qa, x[4].a) + dot(qc, x[4].b), dot(qa, x[5].a) + dot(qc, x[5].b),
                          dot(qa, x[6].a) + dot(qc, x[6].b), dot(qa, x[7].a) + dot(qc, x[7].b));
      if (NEOX && rotated) {
        let pa = sc[qh + HALF / 4u];
        let pc = sc[qh + HALF / 4u + 1u];
        lo4[h] += vec4<f32>(dot(pa, y[0].a) + dot(pc, y[0].b), dot(pa, y[1].a) + dot(pc, y[1].b),
                            dot(pa, y[2].a) + dot(pc, y[2].b), dot(pa, y[3].a) + dot(pc, y[3].b));
        hi4[h] += vec4<f32>(dot(pa, y[4].a) + dot(pc, y[4].b), dot(pa, y[5].a) + dot(pc, y[5].b),
                            dot(pa, y[6].a) + dot(pc, y[6].b), dot(pa, y[7].a) + dot(pc, y[7].b));
      }
    }
  }
  // the score rows hold a multiple of 8 slots (see the launcher)
  let sb = p.s_off / 4u + (t * H + g * G) * (p.stride / 4u) + k0 / 4u;
  for (var h = 0u; h < G; h++) {
    sc[sb + h * (p.stride / 4u)] = capScores(lo4[h]);
    sc[sb + h * (p.stride / 4u) + 1u] = capScores(hi4[h]);
  }
}

// softmax: one invocation per (query, head, chunk); lanes past n get 0.
@compute @workgroup_size(WG)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  let th = i / p.chunks;
  if (th >= p.tc * H) {
    return;
  }
  let c = i - th * p.chunks;
  let n = span(p.t0 + th / H).n;
  let k0 = c * C;
  if (k0 >= n) {
    return;
  }
  let k1 = min(k0 + C, n);
  let base = p.s_off / 4u + th * (p.stride / 4u);
  let lane = vec4<u32>(0u, 1u, 2u, 3u);
  let low = vec4<f32>(-3.4028234663852886e38);
  var m4 = low;
  for (var kk = k0; kk < k1; kk += 4u) {
    m4 = max(m4, select(low, sc[base + kk / 4u], kk + lane < vec4<u32>(k1)));
  }
  let m = max(max(m4.x, m4.y), max(m4.z, m4.w));
  var l4 = vec4<f32>(0.0);
  for (var kk = k0; kk < k1; kk += 4u) {
    let e = select(vec4<f32>(0.0), exp(sc[base + kk / 4u] - m), kk + lane < vec4<u32>(k1));
    sc[base + kk / 4u] = e;
    l4 += e;
  }
  sc[p.st_off / 4u + th * p.chunks + c] = vec4<f32>(m, l4.x + l4.y + l4.z + l4.w, 0.0, 0.0);
}

// values: one invocation per (query, KV head, chunk, 16 dims), dims fastest.
@compute @workgroup_size(WG)
fn values(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  let slices = D / 16u;
  let rest = i / slices;
  if (rest >= p.tc * KVH * p.chunks) {
    return;
  }
  let e = 16u * (i - rest * slices);
  let c = rest % p.chunks;
  let tg = rest / p.chunks;
  let t = tg / KVH;
  let g = tg - t * KVH;
  let sp = span(p.t0 + t);
  let k0 = c * C;
  if (k0 >= sp.n) {
    return;
  }
  let k1 = min(k0 + C, sp.n);
  let pb = p.s_off / 4u + (t * H + g * G) * (p.stride / 4u);
  var acc0 = array<vec4<f32>, G>();
  var acc1 = array<vec4<f32>, G>();
  var acc2 = array<vec4<f32>, G>();
  var acc3 = array<vec4<f32>, G>();
  let slotLo = row(sp, sp.ns);
  var r = row(sp, k0);
  for (var kk = k0; kk < k1; kk += 4u) {
    var x: array<Oct, 4>;
    var y: array<Oct, 4>;
    for (var j = 0u; j < 4u; j++) {
      if (j > 0u && kk + j < k1) {
        r = nextRow(sp, slotLo, kk + j - 1u, r); // lanes past k1 (probability 0) repeat a row
      }
      x[j] = vOct(r * WIDTH + g * D + e);
      y[j] = vOct(r * WIDTH + g * D + e + 8u);
    }
    if (kk + 4u < k1) {
      r = nextRow(sp, slotLo, kk + 3u, r);
    }
    for (var h = 0u; h < G; h++) {
      let w = sc[pb + h * (p.stride / 4u) + kk / 4u];
      acc0[h] += w.x * x[0].a + w.y * x[1].a + w.z * x[2].a + w.w * x[3].a;
      acc1[h] += w.x * x[0].b + w.y * x[1].b + w.z * x[2].b + w.w * x[3].b;
      acc2[h] += w.x * y[0].a + w.y * y[1].a + w.z * y[2].a + w.w * y[3].a;
      acc3[h] += w.x * y[0].b + w.y * y[1].b + w.z * y[2].b + w.w * y[3].b;
    }
  }
  for (var h = 0u; h < G; h++) {
    let o = p.part_off / 4u + ((t * H + g * G + h) * p.chunks + c) * (D / 4u) + e / 4u;
    sc[o] = acc0[h];
    sc[o + 1u] = acc1[h];
    sc[o + 2u] = acc2[h];
    sc[o + 3u] = acc3[h];
  }
}

// combine: one invocation per (query, head, 4 dims).
@compute @workgroup_size(WG)
fn combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  let th = i / (D / 4u);
  if (th >= p.tc * H) {
    return;
  }
  let d4 = i - th * (D / 4u);
  let t = th / H;
  let nc = (span(p.t0 + t).n + C - 1u) / C;
  let st = p.st_off / 4u + th * p.chunks;
  var m = sc[st].x;
  for (var c = 1u; c < nc; c++) {
    m = max(m, sc[st + c].x);
  }
  var l = 0.0;
  var o = vec4<f32>(0.0);
  for (var c = 0u; c < nc; c++) {
    let s = sc[st + c];
    let w = exp(s.x - m);
    l += w * s.y;
    o += w * sc[p.part_off / 4u + (th * p.chunks + c) * (D / 4u) + d4];
  }
  out[((p.t0 + t) * H + (th - t * H)) * (D / 4u) + d4] = o / l;
}
