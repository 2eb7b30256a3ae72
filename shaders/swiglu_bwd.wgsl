// SwiGLU backward: for h = silu(g) * u, silu(g) = g * sigmoid(g),
//   dgate = dh * u * s * (1 + g * (1 - s)), s = sigmoid(g)
//   dup   = dh * silu(g)
// over flat f32 arrays of n elements (both outputs overwritten).
//
// Bindings: @binding(0) uniform Params; gate, up, dh (read) f32 [n];
//   dgate, dup (read_write) f32 [n].
// Dispatch: engine.Grid(n, WG), one element per invocation.
// Constants: WG.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read> dh: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(5) var<storage, read_write> dup: array<f32>;

@compute @workgroup_size(WG)
fn swiglu_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= p.n) {
    return;
  }
  let g = gate[i];
  let s = 1.0 / (1.0 + exp(-g));
  let d = dh[i];
  dgate[i] = d * up[i] * s * (1.0 + g * (1.0 - s));
  dup[i] = d * g * s;
}
