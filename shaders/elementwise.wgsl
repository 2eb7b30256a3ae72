// Element-wise kernels over flat f32 arrays.
//
// Bindings (all entry points): @binding(0) uniform Params; then
//   add:      a (read) [n], b (read) [n], out (rw) [n]          out = a + b
//   swiglu:   gate (read) [n], up (read) [n], out (rw) [n]     out = silu(gate) * up
//   scale:    x (read) [n], unused (read), out (rw) [n]        out = x * p.alpha
//   geglu:    gate (read) [n], up (read) [n], out (rw) [n]     out = gelu_tanh(gate) * up (Gemma)
//   softcap:  x (read) [n], unused (read), out (rw) [n]        out = alpha * tanh(x / alpha) (Gemma 2)
// Dispatch: engine.Grid(n, WG) workgroups of WG invocations, one element each.
// Constants: WG (workgroup size).

struct Params {
  n: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

@compute @workgroup_size(WG)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i < p.n) {
    out[i] = a[i] + b[i];
  }
}

@compute @workgroup_size(WG)
fn swiglu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i < p.n) {
    let g = a[i];
    out[i] = g / (1.0 + exp(-g)) * b[i];
  }
}

@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i < p.n) {
    out[i] = a[i] * p.alpha;
  }
}

// tanhSafe is tanh with its argument clamped where f32 tanh is already ±1, so
// implementations that compute it from exp never see inf/inf.
fn tanhSafe(x: f32) -> f32 {
  return tanh(clamp(x, -15.0, 15.0));
}

@compute @workgroup_size(WG)
fn geglu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i < p.n) {
    let g = a[i];
    // GELU, tanh approximation: 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))
    out[i] = 0.5 * g * (1.0 + tanhSafe(0.7978845608028654 * (g + 0.044715 * g * g * g))) * b[i];
  }
}

@compute @workgroup_size(WG)
fn softcap(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = index(wid, nwg, lid);
  if (i < p.n) {
    out[i] = p.alpha * tanhSafe(a[i] / p.alpha);
  }
}
