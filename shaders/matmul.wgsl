// Matrix product y = x·Wᵀ (+ bias) (+ y) for f32 and f16 weights of any K, read in 32-bit
// words, so rows may start anywhere (f16 rows of odd length start mid-word). It serves the
// shapes that matmul_vec4.wgsl (16-byte loads: f32 with K % 4 == 0, f16 with K % 8 == 0)
// cannot; matmul_q.wgsl holds the block types.
//
// Bindings (all entry points):
//   1 x    (read) f32 [m, k], row stride k
//   2 w    (read) one weight part, [n, k] of WTYPE as raw words
//   3 bias (read) f32 [>= col0 + n] (any read-only buffer when p.bias == 0)
//   4 y    (rw)   f32 [m, ldy]; this part writes columns [col0, col0 + n)
// Entry points and dispatch (engine.Grid over x and y; z as stated):
//   matvec:    one output column per invocation, no barriers or shared memory (the fast path
//              on CPU adapters, where a workgroup's invocations are SIMD lanes);
//              Grid(n, WG), z = m.
//   matvec_wg: one workgroup per output column, each invocation strides over k, then a tree
//              reduction in shared memory (the fast path on GPUs); Grid(n, 1) workgroups of
//              WG, z = m.
//   tiled:     a TM x TN register tile of y per invocation, reading each x and W element
//              once per tile: TM rows of x shared by the workgroup, TN rows of W per
//              invocation (prefill); workgroups (ceil(ceil(n/TN)/WG), ceil(m/TM), 1).
// Constants: WTYPE (0 f32, 1 f16), WG (a power of two for matvec_wg), TM, TN.

#include "matmul_common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn x4(i: u32) -> vec4<f32> {
  return vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
}

fn f32_4(i: u32) -> vec4<f32> {
  return bitcast<vec4<f32>>(vec4<u32>(w[i], w[i + 1u], w[i + 2u], w[i + 3u]));
}

// Dot product of weight row r with x row starting at xo, k elements.
fn row_dot(r: u32, xo: u32) -> f32 {
  let k = p.k;
  var s = vec4<f32>(0.0);
  var t = 0.0;
  if (WTYPE == 0u) {
    let b = r * k;
    let k4 = k & ~3u;
    for (var e = 0u; e < k4; e += 4u) {
      s += x4(xo + e) * f32_4(b + e);
    }
    for (var e = k4; e < k; e++) {
      t += x[xo + e] * bitcast<f32>(w[b + e]);
    }
  } else {
    // Halfword h0 = r*k starts the row; with odd k, odd rows start mid-word.
    let h0 = r * k;
    var e = h0 & 1u;
    if (e == 1u) {
      t = x[xo] * unpack2x16float(w[h0 >> 1u]).y;
    }
    let b = (h0 + e) >> 1u; // word holding elements e, e+1
    let n8 = e + ((k - e) & ~7u);
    var wi = b;
    for (; e < n8; e += 8u) {
      let a = unpack2x16float(w[wi]);
      let c = unpack2x16float(w[wi + 1u]);
      let d = unpack2x16float(w[wi + 2u]);
      let f = unpack2x16float(w[wi + 3u]);
      s += x4(xo + e) * vec4<f32>(a, c) + x4(xo + e + 4u) * vec4<f32>(d, f);
      wi += 4u;
    }
    for (; e + 1u < k; e += 2u) {
      let a = unpack2x16float(w[wi]);
      t += x[xo + e] * a.x + x[xo + e + 1u] * a.y;
      wi += 1u;
    }
    if (e < k) {
      t += x[xo + e] * unpack2x16float(w[wi]).x;
    }
  }
  return (s.x + s.y) + (s.z + s.w) + t;
}

@compute @workgroup_size(WG)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j = (wid.y * nwg.x + wid.x) * WG + lid.x;
  let i = wid.z;
  if (j < p.n && i < p.m) {
    store(i, j, row_dot(j, i * p.k));
  }
}

// Elements [4u, 4u+4) of row r against x row xo: the work unit of one invocation in matvec_wg.
fn unit_dot(r: u32, xo: u32, u: u32) -> f32 {
  let k = p.k;
  if (WTYPE == 0u) {
    let e = 4u * u;
    if (e + 4u <= k) {
      return dot(x4(xo + e), f32_4(r * k + e));
    }
    var t = 0.0;
    for (var i = e; i < k; i++) {
      t += x[xo + i] * bitcast<f32>(w[r * k + i]);
    }
    return t;
  }
  var t = 0.0;
  for (var i = 4u * u; i < min(4u * u + 4u, k); i++) {
    let h = r * k + i;
    let v = unpack2x16float(w[h >> 1u]);
    t += x[xo + i] * select(v.x, v.y, (h & 1u) == 1u);
  }
  return t;
}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn matvec_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // The row index is uniform over the workgroup, so every invocation reaches the barriers.
  let j = wid.y * nwg.x + wid.x;
  let i = wid.z;
  let units = (p.k + 3u) / 4u;
  var t = 0.0;
  if (j < p.n) {
    for (var u = lid.x; u < units; u += WG) {
      t += unit_dot(j, i * p.k, u);
    }
  }
  partial[lid.x] = t;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid.x < s) {
      partial[lid.x] += partial[lid.x + s];
    }
  }
  if (lid.x == 0u && j < p.n) {
    store(i, j, partial[0]);
  }
}

// One k-step of the register tile: weight values of rows jr[0..TN) at elements [e, e+4).
fn wvec(jr: u32, e: u32) -> vec4<f32> {
  let k = p.k;
  if (WTYPE == 0u) {
    return f32_4(jr * k + e);
  }
  // f16 with k even here (odd k goes through the scalar tail below).
  let b = (jr * k + e) >> 1u;
  return vec4<f32>(unpack2x16float(w[b]), unpack2x16float(w[b + 1u]));
}

fn wscalar(jr: u32, e: u32) -> f32 {
  let h = jr * p.k + e;
  if (WTYPE == 0u) {
    return bitcast<f32>(w[h]);
  }
  let v = unpack2x16float(w[h >> 1u]);
  return select(v.x, v.y, (h & 1u) == 1u);
}

@compute @workgroup_size(WG)
fn tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i0 = wid.y * TM; // uniform over the workgroup
  let j0 = (wid.x * WG + lid.x) * TN;
  if (j0 >= p.n) {
    return;
  }
  let k = p.k;
  // Rows past the edge repeat the last row (in range, never stored), so the inner loops
  // stay branch-free.
  var xo: array<u32, TM>;
  for (var a = 0u; a < TM; a++) {
    xo[a] = min(i0 + a, p.m - 1u) * k;
  }
  var jr: array<u32, TN>;
  for (var c = 0u; c < TN; c++) {
    jr[c] = min(j0 + c, p.n - 1u);
  }
  var acc: array<array<f32, TN>, TM>;
  // f16 rows start mid-word when k is odd: use the vector step only for even k.
  let k4 = select(k & ~3u, 0u, WTYPE == 1u && (k & 1u) == 1u);
  for (var e = 0u; e < k4; e += 4u) {
    var xv: array<vec4<f32>, TM>;
    for (var a = 0u; a < TM; a++) {
      xv[a] = x4(xo[a] + e);
    }
    for (var c = 0u; c < TN; c++) {
      let wv = wvec(jr[c], e);
      for (var a = 0u; a < TM; a++) {
        acc[a][c] += dot(xv[a], wv);
      }
    }
  }
  for (var e = k4; e < k; e++) {
    for (var c = 0u; c < TN; c++) {
      let wv = wscalar(jr[c], e);
      for (var a = 0u; a < TM; a++) {
        acc[a][c] += x[xo[a] + e] * wv;
      }
    }
  }
  for (var a = 0u; a < TM; a++) {
    for (var c = 0u; c < TN; c++) {
      if (i0 + a < p.m && j0 + c < p.n) {
        store(i0 + a, j0 + c, acc[a][c]);
      }
    }
  }
}
