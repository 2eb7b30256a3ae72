// Row-wise normalisations of f32 [rows, n] arrays, one workgroup per row.
//
// Bindings (both entry points): @binding(0) uniform Params; then
//   x (read) [rows, n]; w (read) [n] (softmax: unused, bind x again); y (read_write) [rows, n].
//   rmsnorm: y = x / sqrt(mean(x^2) + eps) * w
//   softmax: y = exp(x - max(x)) / sum(exp(x - max(x)))
// Dispatch: engine.Grid(rows * WG, WG), i.e. one workgroup per row. Each
// invocation reduces a strided slice, then after one barrier every
// invocation sums the WG partials itself in the same order (no tree: on
// CPU adapters every barrier is a coroutine switch).
// Constants: WG.

struct Params {
  rows: u32,
  n: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> partA: array<f32, WG>;
var<workgroup> partB: array<f32, WG>;

@compute @workgroup_size(WG)
fn rmsnorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= p.rows) {
    return;
  }
  let base = row * p.n;
  var s = 0.0;
  for (var i = lid.x; i < p.n; i += WG) {
    let v = x[base + i];
    s += v * v;
  }
  partA[lid.x] = s;
  workgroupBarrier();
  var total = 0.0;
  for (var l = 0u; l < WG; l++) {
    total += partA[l];
  }
  let inv = 1.0 / sqrt(total / f32(p.n) + p.eps);
  for (var i = lid.x; i < p.n; i += WG) {
    y[base + i] = x[base + i] * inv * w[i];
  }
}

@compute @workgroup_size(WG)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= p.rows) {
    return;
  }
  let base = row * p.n;
  var m = -3.4028234663852886e38;
  for (var i = lid.x; i < p.n; i += WG) {
    m = max(m, x[base + i]);
  }
  partA[lid.x] = m;
  workgroupBarrier();
  var rowMax = partA[0];
  for (var l = 1u; l < WG; l++) {
    rowMax = max(rowMax, partA[l]);
  }
  // each invocation keeps its own exponentials in y and rescales them below,
  // so no other invocation's writes are read and no barrier is needed for y
  var s = 0.0;
  for (var i = lid.x; i < p.n; i += WG) {
    let e = exp(x[base + i] - rowMax);
    y[base + i] = e;
    s += e;
  }
  partB[lid.x] = s;
  workgroupBarrier();
  var total = 0.0;
  for (var l = 0u; l < WG; l++) {
    total += partB[l];
  }
  let inv = 1.0 / total;
  for (var i = lid.x; i < p.n; i += WG) {
    y[base + i] *= inv;
  }
}
