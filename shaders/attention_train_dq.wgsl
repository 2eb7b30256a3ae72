// Training attention, backward for the queries. Per (query t, head h), with the forward's
// logsumexp L = stats[t, h, 0] and delta = sum(dout * out) (written to stats[t, h, 1] for
// the dkv pass), recomputing every score instead of storing it:
//   p_j = exp(scale * q . k_j - L), dp_j = dout . v_j, ds_j = p_j (dp_j - delta)
//   dq = scale * sum_j ds_j k_j                                     (overwritten)
//
// Bindings: @binding(0) uniform Params; q, k, v, out, dout (read) f32; stats (read_write)
//   f32 [t, heads, 2]; dq (read_write) f32 [t, heads, D].
// Dispatch: engine.Grid(t * heads, WG), one invocation per (query, head), barrier-free.
// Record it before attention_train_dkv.wgsl, which reads the deltas.
// Constants: WG, D, G.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> out: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;

#include "attention_train_common.wgsl"

@compute @workgroup_size(WG)
fn dq_pass(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid); // t * heads + h
  if (i >= p.t * p.heads) {
    return;
  }
  let t = i / p.heads;
  let g = (i - t * p.heads) / G;
  let qo = i * D;
  let kw = p.kv_heads * D;
  var qv = array<f32, D>();
  var gv = array<f32, D>();
  var delta = 0.0;
  for (var d = 0u; d < D; d++) {
    qv[d] = q[qo + d] * p.scale;
    gv[d] = dout[qo + d];
    delta += gv[d] * out[qo + d];
  }
  stats[2u * i + 1u] = delta;
  let lse = stats[2u * i];
  var acc = array<f32, D>();
  let n = visible(t);
  for (var j = 0u; j < n; j++) {
    let kb = j * kw + g * D;
    var s = 0.0;
    var dp = 0.0;
    for (var d = 0u; d < D; d++) {
      s += qv[d] * k[kb + d];
      dp += gv[d] * v[kb + d];
    }
    let ds = exp(s - lse) * (dp - delta);
    for (var d = 0u; d < D; d++) {
      acc[d] += ds * k[kb + d];
    }
  }
  for (var d = 0u; d < D; d++) {
    dq[qo + d] = acc[d] * p.scale;
  }
}
