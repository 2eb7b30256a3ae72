// Training attention, forward: for each query t and head h, out = softmax(s) · V over the
// visible key rows (attention_train_common.wgsl), s_j = scale * q . k_j, and the row's
// logsumexp saved in stats[t, h, 0] for the backward (which recomputes the scores from it,
// FlashAttention-2 style, instead of storing them). One pass, online softmax: memory is
// O(t * heads) whatever the prefix.
//
// Bindings: @binding(0) uniform Params; q, k, v (read) f32; out (read_write) f32
//   [t, heads, D]; stats (read_write) f32 [t, heads, 2] (element 0 the result; element 1
//   scratch between chunks, overwritten by the dq pass).
// Dispatch: engine.Grid(t * heads / HB, WG) per chunk of keys [lo, hi), in order (see
//   Chunks in the common file), one invocation per (query, block of HB heads
//   of one KV head): each key and value row loaded serves HB heads. Barrier-free.
// Constants: WG, D (head dim), G (query heads per KV head), HB (heads per invocation,
//   a divisor of G).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

#include "attention_train_common.wgsl"

const HBD = HB * D; // private elements per head block

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let nb = p.heads / HB;
  let i = flat(wid, nwg, lid); // t * nb + head block
  if (i >= p.t * nb) {
    return;
  }
  let t = i / nb;
  let h0 = (i - t * nb) * HB; // HB heads of one KV head: HB divides G
  let g = h0 / G;
  let qo = (t * p.heads + h0) * D;
  let kw = p.kv_heads * D;
  var qv = array<f32, HBD>();
  for (var e = 0u; e < HBD; e++) {
    qv[e] = q[qo + e] * p.scale;
  }
  let n = visible(t);
  if (p.lo >= n) {
    return; // finished by an earlier chunk of keys
  }
  // A chunk after the first resumes from the running max, sum and unnormalised output
  // the previous one left in stats[.., 0], stats[.., 1] and out.
  var m = array<f32, HB>();
  var l = array<f32, HB>();
  var acc = array<f32, HBD>();
  for (var b = 0u; b < HB; b++) {
    m[b] = -3.4028234663852886e38;
    if (p.lo != 0u) {
      let th = t * p.heads + h0 + b;
      m[b] = stats[2u * th];
      l[b] = stats[2u * th + 1u];
    }
  }
  if (p.lo != 0u) {
    for (var e = 0u; e < HBD; e++) {
      acc[e] = out[qo + e];
    }
  }
  let hi = min(n, p.hi);
  for (var j = p.lo; j < hi; j++) {
    let kb = j * kw + g * D;
    // explicit initialisers: naga hoists bare loop-body declarations and zeroes them once
    var s = array<f32, HB>();
    for (var d = 0u; d < D; d++) {
      let kd = k[kb + d];
      for (var b = 0u; b < HB; b++) {
        s[b] += qv[b * D + d] * kd;
      }
    }
    var e = array<f32, HB>();
    for (var b = 0u; b < HB; b++) {
      if (s[b] > m[b]) {
        let c = exp(m[b] - s[b]);
        l[b] *= c;
        for (var d = 0u; d < D; d++) {
          acc[b * D + d] *= c;
        }
        m[b] = s[b];
      }
      e[b] = exp(s[b] - m[b]);
      l[b] += e[b];
    }
    for (var d = 0u; d < D; d++) {
      let vd = v[kb + d];
      for (var b = 0u; b < HB; b++) {
        acc[b * D + d] += e[b] * vd;
      }
    }
  }
  let last = hi == n;
  for (var b = 0u; b < HB; b++) {
    let th = t * p.heads + h0 + b;
    let r = select(1.0, 1.0 / l[b], last);
    for (var d = 0u; d < D; d++) {
      out[qo + b * D + d] = acc[b * D + d] * r;
    }
    if (last) {
      stats[2u * th] = m[b] + log(l[b]);
    } else {
      stats[2u * th] = m[b];
      stats[2u * th + 1u] = l[b];
    }
  }
}
