// RMSNorm backward. Forward (norm.wgsl): y = x * r * w, r = 1 / sqrt(mean(x^2) + eps) per
// row of n. Given dy:
//   dx = r * (dy * w) - x * r^3 / n * sum(dy * w * x)     (dx += ... when p.acc)
//   dw += sum over rows of dy * x * r                      (always accumulates)
//
// Bindings (both entry points): @binding(0) uniform Params; then
//   x (read) f32 [rows, n]; w (read) f32 [n]; dy (read) f32 [rows, n];
//   dx (read_write) f32 [rows, n]; dw (read_write) f32 [n]; inv (read_write) f32 [rows].
// Entry points and dispatch:
//   rows:   one workgroup per row (engine.Grid(rows * WG, WG)): each invocation reduces a
//           strided slice, then after one barrier every invocation sums the WG partials
//           in the same order (as norm.wgsl); writes dx and inv[row] = r.
//   weight: one invocation per column (engine.Grid(n, WG)), summing over rows in order
//           with inv from the rows pass (record rows first). Deterministic, no atomics.
// Constants: WG.

struct Params {
  rows: u32,
  n: u32,
  eps: f32,
  acc: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read_write> dw: array<f32>;
@group(0) @binding(6) var<storage, read_write> inv: array<f32>;

var<workgroup> partA: array<f32, WG>;
var<workgroup> partB: array<f32, WG>;

@compute @workgroup_size(WG)
fn rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= p.rows) {
    return;
  }
  let base = row * p.n;
  var ss = 0.0;
  var sd = 0.0;
  for (var i = lid.x; i < p.n; i += WG) {
    let v = x[base + i];
    ss += v * v;
    sd += dy[base + i] * w[i] * v;
  }
  partA[lid.x] = ss;
  partB[lid.x] = sd;
  workgroupBarrier();
  var tss = 0.0;
  var tsd = 0.0;
  for (var l = 0u; l < WG; l++) {
    tss += partA[l];
    tsd += partB[l];
  }
  let r = 1.0 / sqrt(tss / f32(p.n) + p.eps);
  let c = r * r * r * tsd / f32(p.n);
  for (var i = lid.x; i < p.n; i += WG) {
    var g = r * dy[base + i] * w[i] - x[base + i] * c;
    if (p.acc != 0u) {
      g += dx[base + i];
    }
    dx[base + i] = g;
  }
  if (lid.x == 0u) {
    inv[row] = r;
  }
}

@compute @workgroup_size(WG)
fn weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (j >= p.n) {
    return;
  }
  var s = 0.0;
  for (var i = 0u; i < p.rows; i++) {
    s += dy[i * p.n + j] * x[i * p.n + j] * inv[i];
  }
  dw[j] += s;
}
