// Global gradient norm in two deterministic steps (no atomics, fixed summation order):
//   sumsq:  each workgroup sums the squares of a chunk of CHUNK elements of src[0:n] and
//           writes dst[slot + workgroup] (src: one gradient tensor, dst: the partials).
//   finish: one workgroup sums src[0:n] (the partials of every tensor) and writes
//           dst[0] = sqrt(sum), dst[1] = min(1, max_norm / (dst[0] + 1e-6)), or 1 when
//           max_norm <= 0 (the clip scale AdamW multiplies gradients by).
// Within a workgroup each invocation sums a strided slice; after one barrier invocation 0
// adds the WG partials in order.
//
// Bindings: @binding(0) uniform Params; src (read) f32; dst (read_write) f32.
// Dispatch: sumsq: engine.Grid(ceil(n / CHUNK) * WG, WG) (one workgroup per chunk);
//   finish: one workgroup.
// Constants: WG, CHUNK (a multiple of WG).

struct Params {
  n: u32,
  slot: u32,
  max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

var<workgroup> part: array<f32, WG>;

fn reduce(lid: u32, s: f32) -> f32 {
  part[lid] = s;
  workgroupBarrier();
  var t = 0.0;
  if (lid == 0u) {
    for (var l = 0u; l < WG; l++) {
      t += part[l];
    }
  }
  return t;
}

@compute @workgroup_size(WG)
fn sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = wid.y * nwg.x + wid.x; // chunk, uniform over the workgroup
  let lo = c * CHUNK;
  let hi = min(lo + CHUNK, p.n);
  var s = 0.0;
  for (var i = lo + lid.x; i < hi; i += WG) {
    let g = src[i];
    s += g * g;
  }
  let t = reduce(lid.x, s);
  if (lid.x == 0u && lo < p.n) {
    dst[p.slot + c] = t;
  }
}

@compute @workgroup_size(WG)
fn finish(@builtin(local_invocation_id) lid: vec3<u32>) {
  var s = 0.0;
  for (var i = lid.x; i < p.n; i += WG) {
    s += src[i];
  }
  let t = reduce(lid.x, s);
  if (lid.x == 0u) {
    let norm = sqrt(t);
    dst[0] = norm;
    var scale = 1.0;
    if (p.max_norm > 0.0) {
      scale = min(1.0, p.max_norm / (norm + 1e-6));
    }
    dst[1] = scale;
  }
}
