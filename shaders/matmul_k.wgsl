// Matrix product y = x·Wᵀ (+ bias) (+ y) for GGUF's scaled-block weights: the K-quants
// (q4_k, q5_k, q6_k; K a multiple of 256) and q4_1, q5_0, q5_1, iq4_nl (K a multiple of
// 32), read in their file layout and dequantised in the kernel (the block layouts are in
// kquant_common.wgsl). x is read in 16-byte loads, W as 32-bit words; blocks that are not
// word aligned (q6_k's 210 bytes, q5_0's 22, iq4_nl's 18) are read across word pairs.
//
// Bindings (all entry points):
//   1 x    (read) f32 [m, k] as vec4, row stride k/4
//   2 w    (read) one weight part, [n, k/(32 blk_units())] blocks as raw words
//   3 bias (read) f32 [>= col0 + n] (any read-only buffer when p.bias == 0)
//   4 y    (rw)   f32 [m, ldy]; this part writes columns [col0, col0 + n)
// Entry points and dispatch (engine.Grid over x and y; z as stated):
//   matvec:    R consecutive output columns per invocation, no barriers (CPU adapters);
//              Grid(ceil(n/R), WG), z = m.
//   matvec_wg: one workgroup per output column, each invocation a unit of 32 elements at a
//              time, then a tree reduction in shared memory (GPUs); Grid(n, 1) workgroups of
//              WG, z = m.
//   tiled:     a TM x TN register tile of y per invocation: TM rows of x shared by the
//              workgroup, TN rows of W per invocation, each unit dequantised once per tile
//              (prefill); workgroups (ceil(ceil(n/TN)/WG), ceil(m/TM), 1).
// Constants: WTYPE (4 q4_k, 5 q5_k, 6 q6_k, 7 q4_1, 8 q5_0, 9 q5_1, 10 iq4_nl), WG (a
// power of two for matvec_wg), R, TM, TN.

#include "matmul_common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

#include "kquant_common.wgsl"

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

// Dot product of unit u of the super-block at byte o with the 32 x elements from vec4
// index xi; the unit's multipliers are applied once, to the sums.
fn unit_dot(o: u32, u: u32, xi: u32) -> f32 {
  let s = unit_scales(o, u);
  if (WTYPE == 6u) {
    var a = vec4<f32>(0.0);
    var b = vec4<f32>(0.0);
    for (var qi = 0u; qi < 4u; qi++) {
      a += x[xi + qi] * (unit_q(o, u, qi) - vec4<f32>(32.0));
      b += x[xi + 4u + qi] * (unit_q(o, u, 4u + qi) - vec4<f32>(32.0));
    }
    return s.x * hsum(a) + s.y * hsum(b);
  }
  var a = vec4<f32>(0.0);
  var xs = vec4<f32>(0.0);
  for (var qi = 0u; qi < 8u; qi++) {
    let xv = x[xi + qi];
    a += xv * unit_q(o, u, qi);
    xs += xv;
  }
  return s.x * hsum(a) - s.y * hsum(xs);
}

@compute @workgroup_size(WG)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j0 = ((wid.y * nwg.x + wid.x) * WG + lid.x) * R;
  let i = wid.z;
  if (j0 >= p.n || i >= p.m) {
    return;
  }
  let ub = blk_units();
  let nb = p.k / (32u * ub);
  let xo = i * (p.k / 4u);
  let sb = sb_bytes();
  var jr: array<u32, R>;
  var t: array<f32, R>;
  for (var a = 0u; a < R; a++) {
    jr[a] = min(j0 + a, p.n - 1u) * nb;
    t[a] = 0.0;
  }
  // Each unit's 32 x values are loaded once and serve the R rows.
  for (var b = 0u; b < nb; b++) {
    for (var u = 0u; u < ub; u++) {
      let xi = xo + 8u * (b * ub + u);
      var xv: array<vec4<f32>, 8>;
      var xs = vec4<f32>(0.0);
      for (var qi = 0u; qi < 8u; qi++) {
        xv[qi] = x[xi + qi];
        xs += xv[qi];
      }
      for (var a = 0u; a < R; a++) {
        let o = (jr[a] + b) * sb;
        let s = unit_scales(o, u);
        var lo = vec4<f32>(0.0);
        var hi = vec4<f32>(0.0);
        for (var qi = 0u; qi < 4u; qi++) {
          lo += xv[qi] * unit_q(o, u, qi);
          hi += xv[4u + qi] * unit_q(o, u, 4u + qi);
        }
        if (WTYPE == 6u) {
          // sum x (q - 32) = sum x q - 32 sum x, per half (each half has its own scale)
          let xl = xv[0] + xv[1] + xv[2] + xv[3];
          t[a] += s.x * (hsum(lo) - 32.0 * hsum(xl)) + s.y * (hsum(hi) - 32.0 * hsum(xs - xl));
        } else {
          t[a] += s.x * hsum(lo + hi) - s.y * hsum(xs);
        }
      }
    }
  }
  for (var a = 0u; a < R; a++) {
    if (j0 + a < p.n) {
      store(i, j0 + a, t[a]);
    }
  }
}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn matvec_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // The column is uniform over the workgroup, so every invocation reaches the barriers.
  let j = wid.y * nwg.x + wid.x;
  let i = wid.z;
  let ub = blk_units();
  let nb = p.k / (32u * ub);
  let sb = sb_bytes();
  var t = 0.0;
  if (j < p.n) {
    for (var v = lid.x; v < ub * nb; v += WG) {
      let b = v / ub;
      t += unit_dot((j * nb + b) * sb, v % ub, i * (p.k / 4u) + 8u * v);
    }
  }
  partial[lid.x] = t;
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
  let ub = blk_units();
  let nb = p.k / (32u * ub);
  let sb = sb_bytes();
  // Rows and columns past the edge repeat the last one (in range, never stored), so the
  // inner loops stay branch-free.
  var xo: array<u32, TM>;
  for (var a = 0u; a < TM; a++) {
    xo[a] = min(i0 + a, p.m - 1u) * (p.k / 4u);
  }
  var jr: array<u32, TN>;
  for (var c = 0u; c < TN; c++) {
    jr[c] = min(j0 + c, p.n - 1u);
  }
  var acc: array<array<f32, TN>, TM>;
  for (var blk = 0u; blk < nb; blk++) {
    for (var u = 0u; u < ub; u++) {
      var o: array<u32, TN>;
      var s: array<vec2<f32>, TN>;
      for (var c = 0u; c < TN; c++) {
        o[c] = (jr[c] * nb + blk) * sb;
        s[c] = unit_scales(o[c], u);
      }
      for (var qi = 0u; qi < 8u; qi++) {
        var wv: array<vec4<f32>, TN>;
        for (var c = 0u; c < TN; c++) {
          wv[c] = deq(s[c], qi, unit_q(o[c], u, qi));
        }
        for (var a = 0u; a < TM; a++) {
          let xv = x[xo[a] + 8u * (blk * ub + u) + qi];
          for (var c = 0u; c < TN; c++) {
            acc[a][c] += dot(xv, wv[c]);
          }
        }
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
