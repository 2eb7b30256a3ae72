// Training attention, backward for the queries. Per (query t, head h), with the forward's
// logsumexp L = stats[t, h, 0] and delta = sum(dout * out) (written to stats[t, h, 1] for
// the dkv pass), recomputing every score instead of storing it:
//   p_j = exp(scale * q . k_j - L), dp_j = dout . v_j, ds_j = p_j (dp_j - delta)
//   dq = scale * sum_j ds_j k_j          (the chunk of keys [0, hi) overwrites, later ones add)
//
// Bindings: @binding(0) uniform Params; q, k, v, out, dout (read) f32; stats (read_write)
//   f32 [t, heads, 2]; dq (read_write) f32 [t, heads, D].
// Dispatch: engine.Grid(t * heads / HB, WG) per chunk of keys [lo, hi), in order (see
//   Chunks in the common file), one invocation per (query, block of HB heads
//   of one KV head; each key and value row loaded serves HB heads), barrier-free.
// Record it before attention_train_dkv.wgsl, which reads the deltas.
// Constants: WG, D, G, HB (a divisor of G).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> out: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;

#include "attention_train_common.wgsl"

const HBD = HB * D; // private elements per head block

@compute @workgroup_size(WG)
fn dq_pass(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let nb = p.heads / HB;
  let i = flat(wid, nwg, lid); // t * nb + head block
  if (i >= p.t * nb) {
    return;
  }
  let t = i / nb;
  let h0 = (i - t * nb) * HB; // HB heads of one KV head: HB divides G
  let g = h0 / G;
  let th0 = t * p.heads + h0;
  let qo = th0 * D;
  let kw = p.kv_heads * D;
  var qv = array<f32, HBD>();
  var gv = array<f32, HBD>();
  var delta = array<f32, HB>();
  var lse = array<f32, HB>();
  for (var b = 0u; b < HB; b++) {
    for (var d = 0u; d < D; d++) {
      let e = b * D + d;
      qv[e] = q[qo + e] * p.scale;
      gv[e] = dout[qo + e];
      delta[b] += gv[e] * out[qo + e];
    }
    if (p.lo == 0u) {
      stats[2u * (th0 + b) + 1u] = delta[b];
    }
    lse[b] = stats[2u * (th0 + b)];
  }
  var acc = array<f32, HBD>();
  let n = min(visible(t), p.hi);
  if (p.lo >= n) {
    return; // this chunk of keys is past the query's last
  }
  for (var j = p.lo; j < n; j++) {
    let kb = j * kw + g * D;
    // explicit initialisers: naga hoists bare loop-body declarations and zeroes them once
    var s = array<f32, HB>();
    var dp = array<f32, HB>();
    for (var d = 0u; d < D; d++) {
      let kd = k[kb + d];
      let vd = v[kb + d];
      for (var b = 0u; b < HB; b++) {
        s[b] += qv[b * D + d] * kd;
        dp[b] += gv[b * D + d] * vd;
      }
    }
    var ds = array<f32, HB>();
    for (var b = 0u; b < HB; b++) {
      ds[b] = exp(s[b] - lse[b]) * (dp[b] - delta[b]);
    }
    for (var d = 0u; d < D; d++) {
      let kd = k[kb + d];
      for (var b = 0u; b < HB; b++) {
        acc[b * D + d] += ds[b] * kd;
      }
    }
  }
  for (var e = 0u; e < HBD; e++) {
    var a = acc[e] * p.scale;
    if (p.lo != 0u) {
      a += dq[qo + e];
    }
    dq[qo + e] = a;
  }
}
