// Training attention, backward for the keys and values. Per (key row j, KV head g), over
// every query t that sees j and every query head h of g, recomputing the scores from the
// saved logsumexp and delta (stats, written by the forward and the dq pass):
//   p = exp(scale * q_th . k_j - L_th), ds = p (dout_th . v_j - delta_th)
//   dv_j = sum p dout_th;  dk_j = scale * sum ds q_th
// Rows [0, prefix) are added to dk/dv when acc_prefix (the compressed cache's gradient
// gathers contributions from several groups), else overwritten; own rows per acc_own.
//
// Bindings: @binding(0) uniform Params; q, k, v, dout (read) f32; stats (read) f32
//   [t, heads, 2]; dk, dv (read_write) f32 [prefix + t, kv_heads, D].
// Dispatch: (ceil((prefix + t) / WG), kv_heads, 1) per chunk of queries [lo, hi) (the first
//   with the caller's acc flags, later ones adding; a later chunk may skip the rows past
//   prefix + hi, which it doesn't touch): one invocation per (row, KV head), a
//   workgroup per WG rows of one KV head, which loops over the queries in lockstep, so q,
//   dout and stats are read at workgroup-uniform addresses (broadcast loads on GPUs; in
//   the per-invocation layout, own rows start at different queries and read different q
//   rows); the queries a row doesn't see yet are masked. Barrier-free and deterministic
//   (no atomics: each invocation owns its output row).
// Constants: WG, D, G.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> dk: array<f32>;
@group(0) @binding(7) var<storage, read_write> dv: array<f32>;

#include "attention_train_common.wgsl"

@compute @workgroup_size(WG)
fn dkv_pass(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j0 = wid.x * WG; // uniform
  let g = wid.y;
  let rows = p.prefix + p.t;
  let j = j0 + lid.x;
  let live = j < rows;
  let kb = (min(j, rows - 1u) * p.kv_heads + g) * D;
  var kv = array<f32, D>();
  var vv = array<f32, D>();
  for (var d = 0u; d < D; d++) {
    kv[d] = k[kb + d] * p.scale;
    vv[d] = v[kb + d];
  }
  var gk = array<f32, D>();
  var gv = array<f32, D>();
  // Query t sees row j when t + prefix >= j; the workgroup starts at its first row's first
  // query, and the rows not yet visible are masked.
  // This dispatch takes the queries [lo, hi) (see Chunks in the common file).
  var tlo = p.lo;
  if (j0 > p.prefix) {
    tlo = max(tlo, j0 - p.prefix);
  }
  let thi = min(p.hi, p.t);
  for (var t = tlo; t < thi; t++) {
    let vis = j <= p.prefix + t;
    for (var hh = 0u; hh < G; hh++) {
      let th = t * p.heads + g * G + hh;
      let qo = th * D;
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < D; d++) {
        s += q[qo + d] * kv[d];
        dp += dout[qo + d] * vv[d];
      }
      let pr = select(0.0, exp(s - stats[2u * th]), vis);
      let ds = pr * (dp - stats[2u * th + 1u]);
      for (var d = 0u; d < D; d++) {
        gv[d] += pr * dout[qo + d];
        gk[d] += ds * q[qo + d];
      }
    }
  }
  if (!live) {
    return;
  }
  var acc = p.acc_own != 0u;
  if (j < p.prefix) {
    acc = p.acc_prefix != 0u;
  }
  for (var d = 0u; d < D; d++) {
    var a = gk[d] * p.scale;
    var b = gv[d];
    if (acc) {
      a += dk[kb + d];
      b += dv[kb + d];
    }
    dk[kb + d] = a;
    dv[kb + d] = b;
  }
}
