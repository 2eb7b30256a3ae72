// Training attention, forward: for each query t and head h, out = softmax(s) · V over the
// visible key rows (attention_train_common.wgsl), s_j = scale * q . k_j, and the row's
// logsumexp saved in stats[t, h, 0] for the backward (which recomputes the scores from it,
// FlashAttention-2 style, instead of storing them). One pass, online softmax: memory is
// O(t * heads) whatever the prefix.
//
// Bindings: @binding(0) uniform Params; q, k, v (read) f32; out (read_write) f32
//   [t, heads, D]; stats (read_write) f32 [t, heads, 2] (only element 0 written).
// Dispatch: engine.Grid(t * heads, WG), one invocation per (query, head), barrier-free.
// Constants: WG, D (head dim), G (query heads per KV head).

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

#include "attention_train_common.wgsl"

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid); // t * heads + h
  if (i >= p.t * p.heads) {
    return;
  }
  let t = i / p.heads;
  let g = (i - t * p.heads) / G;
  let qo = i * D;
  let kw = p.kv_heads * D;
  var qv = array<f32, D>();
  for (var d = 0u; d < D; d++) {
    qv[d] = q[qo + d] * p.scale;
  }
  var m = -3.4028234663852886e38;
  var l = 0.0;
  var acc = array<f32, D>();
  let n = visible(t);
  for (var j = 0u; j < n; j++) {
    let kb = j * kw + g * D;
    var s = 0.0;
    for (var d = 0u; d < D; d++) {
      s += qv[d] * k[kb + d];
    }
    if (s > m) {
      let c = exp(m - s);
      l *= c;
      for (var d = 0u; d < D; d++) {
        acc[d] *= c;
      }
      m = s;
    }
    let e = exp(s - m);
    l += e;
    for (var d = 0u; d < D; d++) {
      acc[d] += e * v[kb + d];
    }
  }
  for (var d = 0u; d < D; d++) {
    out[qo + d] = acc[d] / l;
  }
  stats[2u * i] = m + log(l);
}
