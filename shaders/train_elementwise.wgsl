// Element-wise helpers for training over flat f32 arrays, at element offsets (so they
// address rows inside a larger tensor, where binding offsets would need 256-byte
// alignment).
//
// Bindings: @binding(0) uniform Params; x (read) f32; y (read_write) f32.
//   axpy: y[yoff + i] = beta * y[yoff + i] + alpha * x[xoff + i], i < n
//         (beta == 0 never reads y, so a NaN there is overwritten)
// Dispatch: engine.Grid(n, WG), one element per invocation.
// Constants: WG.

struct Params {
  n: u32,
  xoff: u32,
  yoff: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn axpy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= p.n) {
    return;
  }
  var r = p.alpha * x[p.xoff + i];
  if (p.beta != 0.0) {
    r += p.beta * y[p.yoff + i];
  }
  y[p.yoff + i] = r;
}
