// Fill: y[yoff + i] = value for i < n (zeroing gradients and padding).
//
// Bindings: @binding(0) uniform Params; y (read_write) f32.
// Dispatch: engine.Grid(n, WG), one element per invocation.
// Constants: WG.

struct Params {
  n: u32,
  yoff: u32,
  value: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i < p.n) {
    y[p.yoff + i] = p.value;
  }
}
