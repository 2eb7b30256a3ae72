// AdamW step over flat f32 arrays (decoupled weight decay, bias correction, as
// torch.optim.AdamW): with g = grad * gscale * clip[1],
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   param -= lr * (m / bc1 / (sqrt(v / bc2) + eps) + wd * param)
// bc1 = 1 - b1^step and bc2 = 1 - b2^step come from the host (float64). clip[1] is the
// global clip scale GradNormFinish writes (1 when not clipping). With zero_grad, grad is
// set to 0 after it is read (ready for the next accumulation).
//
// Bindings: @binding(0) uniform Params; param, grad, m, v (read_write) f32 [n];
//   clip (read) f32 [2].
// Dispatch: engine.Grid(n, WG), one element per invocation.
// Constants: WG.

struct Params {
  n: u32,
  lr: f32,
  b1: f32,
  b2: f32,
  eps: f32,
  wd: f32,
  bc1: f32,
  bc2: f32,
  gscale: f32,
  zero_grad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> clip: array<f32>;

@compute @workgroup_size(WG)
fn adamw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= p.n) {
    return;
  }
  let g = grad[i] * p.gscale * clip[1];
  let mi = p.b1 * m[i] + (1.0 - p.b1) * g;
  let vi = p.b2 * v[i] + (1.0 - p.b2) * g * g;
  m[i] = mi;
  v[i] = vi;
  let w = param[i];
  param[i] = w - p.lr * (mi / p.bc1 / (sqrt(vi / p.bc2) + p.eps) + p.wd * w);
  if (p.zero_grad != 0u) {
    grad[i] = 0.0;
  }
}
