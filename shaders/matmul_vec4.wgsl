// Matrix product y = x·Wᵀ (+ bias) (+ y) for f32 weights with K a multiple of 4 and f16
// weights with K a multiple of 8: every row then starts on 16 bytes, so x and W are read in
// 16-byte loads (4 f32 or 8 f16), which on llvmpipe run about twice as fast as the 32-bit
// loads of matmul.wgsl (docs/webgpu.md; matmul_bench_test.go).
//
// Bindings (all entry points):
//   1 x    (read) f32 [m, k] as vec4, row stride k/4
//   2 w    (read) one weight part, [n, k] of WTYPE as 16-byte groups (4 f32, or 8 f16)
//   3 bias (read) f32 [>= col0 + n] (any read-only buffer when p.bias == 0)
//   4 y    (rw)   f32 [m, ldy]; this part writes columns [col0, col0 + n)
// Entry points and dispatch (engine.Grid over x and y; z as stated):
//   matvec:    R consecutive output columns per invocation (each x load serves R rows of W),
//              no barriers (the fast path on CPU adapters); Grid(ceil(n/R), WG), z = m.
//   matvec_wg: one workgroup per output column, strided 16-byte loads, a tree reduction in
//              shared memory (GPUs); Grid(n, 1) workgroups of WG, z = m.
//   tiled:     a TM x TN register tile of y per invocation: TM rows of x shared by the
//              workgroup, TN rows of W per invocation (prefill);
//              workgroups (ceil(ceil(n/TN)/WG), ceil(m/TM), 1).
// Constants: WTYPE (0 f32, 1 f16), WG (a power of two for matvec_wg), R, TM, TN.

#include "matmul_common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// A group is 4 elements (f32) or 8 (f16): one 16-byte load of W.
const GROUP = 4u + 4u * WTYPE;

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

// The x group at vec4 index xi: elements [0, 4) in xa, [4, 8) in xb for f16.
struct XGroup {
  a: vec4<f32>,
  b: vec4<f32>,
}

fn xgroup(xi: u32) -> XGroup {
  if (WTYPE == 0u) {
    return XGroup(x[xi], vec4<f32>(0.0));
  }
  return XGroup(x[xi], x[xi + 1u]);
}

// Dot product of one W group with an x group, as 4 partial sums.
fn group_dot(g: vec4<u32>, xg: XGroup) -> vec4<f32> {
  if (WTYPE == 0u) {
    return xg.a * bitcast<vec4<f32>>(g);
  }
  return xg.a * vec4<f32>(unpack2x16float(g.x), unpack2x16float(g.y))
       + xg.b * vec4<f32>(unpack2x16float(g.z), unpack2x16float(g.w));
}

@compute @workgroup_size(WG)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j0 = ((wid.y * nwg.x + wid.x) * WG + lid.x) * R;
  let i = wid.z;
  if (j0 >= p.n || i >= p.m) {
    return;
  }
  let groups = p.k / GROUP;
  // Columns past the edge repeat the last one (in range, never stored).
  var wb: array<u32, R>;
  for (var a = 0u; a < R; a++) {
    wb[a] = min(j0 + a, p.n - 1u) * groups;
  }
  var s: array<vec4<f32>, R>;
  let xo = i * (p.k / 4u);
  for (var g = 0u; g < groups; g++) {
    let xg = xgroup(xo + g * (GROUP / 4u));
    for (var a = 0u; a < R; a++) {
      s[a] += group_dot(w[wb[a] + g], xg);
    }
  }
  for (var a = 0u; a < R; a++) {
    if (j0 + a < p.n) {
      store(i, j0 + a, hsum(s[a]));
    }
  }
}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn matvec_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // The column is uniform over the workgroup, so every invocation reaches the barriers.
  let j = wid.y * nwg.x + wid.x;
  let i = wid.z;
  let groups = p.k / GROUP;
  var s = vec4<f32>(0.0);
  if (j < p.n) {
    let xo = i * (p.k / 4u);
    for (var g = lid.x; g < groups; g += WG) {
      s += group_dot(w[j * groups + g], xgroup(xo + g * (GROUP / 4u)));
    }
  }
  partial[lid.x] = hsum(s);
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    workgroupBarrier();
    if (lid.x < h) {
      partial[lid.x] += partial[lid.x + h];
    }
  }
  if (lid.x == 0u && j < p.n) {
    store(i, j, partial[0]);
  }
}

@compute @workgroup_size(WG)
fn tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i0 = wid.y * TM; // uniform over the workgroup
  let j0 = (wid.x * WG + lid.x) * TN;
  if (j0 >= p.n) {
    return;
  }
  let groups = p.k / GROUP;
  // Rows and columns past the edge repeat the last one (in range, never stored), so the
  // inner loops stay branch-free.
  var xo: array<u32, TM>;
  for (var a = 0u; a < TM; a++) {
    xo[a] = min(i0 + a, p.m - 1u) * (p.k / 4u);
  }
  var wb: array<u32, TN>;
  for (var c = 0u; c < TN; c++) {
    wb[c] = min(j0 + c, p.n - 1u) * groups;
  }
  var acc: array<array<f32, TN>, TM>;
  for (var g = 0u; g < groups; g++) {
    var wv: array<vec4<u32>, TN>;
    for (var c = 0u; c < TN; c++) {
      wv[c] = w[wb[c] + g];
    }
    for (var a = 0u; a < TM; a++) {
      let xg = xgroup(xo[a] + g * (GROUP / 4u));
      for (var c = 0u; c < TN; c++) {
        acc[a][c] += hsum(group_dot(wv[c], xg));
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
