// Training attention under a StreamingLLM window (sinks + recent rows), forward and
// backward, for T queries over their own T key rows (one training sequence, no prefix).
//
// Visibility and positions (as the inference window cache): query t sees the sinks
// j < min(S, t+1) and the rows [lo, t], lo = max(S, t+1-W) (W = window rows after the
// sinks). Within what it sees, sinks keep their positions, window row j has position
// S+(j-lo) and the query S+(t-lo). RoPE scores depend on position differences only: for a
// window key that is t-j, its row difference, and for a sink S+(t-lo)-j, the query taken
// at position min(t, S+W-1) against the sink at its row. So the caller passes every key
// rotated at its row, every query twice: qa rotated at its row (for window keys) and qs
// rotated at min(t, S+W-1) (for sinks), and gets the two query gradients separately
// (undo each rotation, add).
//
// Scores s = scale·q·k; out = softmax(s)·V over the visible keys. Softmax statistics are
// kept per (query, head): stats[(t*H + h)*2] = logsumexp, [.. + 1] = Σ dout∘out (delta);
// the backward recomputes scores from them (FlashAttention-2), never stores them.
//
// Bindings: @binding(0) uniform Params; then
//   qa, qs (read) f32 [T, H*D]; k, v (read) f32 [T, KVH*D];
//   entry forward: out (rw) f32 [T, H*D], stats (rw) f32 [T, H, 2]
//   entry delta:   out, dout (read), stats (rw)
//   entry dq:      dout, stats (read), dq (rw) f32 [T, H*D]: p.which 0 writes the
//                  gradient of qa (window keys), 1 that of qs (sinks)
//   entry dkv:     dout, stats (read), dkv (rw) f32 [2T, KVH*D]: dk rows, then dv rows
// Dispatch: forward, delta, dq: one invocation per (query, head), T*H; dkv: one per
// (key row, KV head), T*KVH; engine.Grid over WG.
// Chunks (llvmpipe's loop cap, docs/webgpu.md): forward and dq take the key rows
// [p.lo, p.hi) per dispatch, dkv the queries [p.lo, p.hi), the launcher's chunks in
// order from 0. The forward's first chunk starts the online softmax and later ones
// resume from the running max, sum and unnormalised output left in stats[.., 0],
// stats[.., 1] and out; dq and dkv write in the first chunk and add in later ones.
// Constants: WG, D (head dim), G (query heads per KV head).

struct Params {
  t: u32,
  heads: u32,
  kv_heads: u32,
  sink: u32,
  window: u32,
  scale: f32,
  which: u32,
  lo: u32, // this dispatch's chunk of key rows (forward, dq) or queries (dkv)
  hi: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// lo is the first window row query t sees.
fn lo(t: u32) -> u32 {
  if (t + 1u > p.window) {
    return max(p.sink, t + 1u - p.window);
  }
  return p.sink;
}

@group(0) @binding(1) var<storage, read> qa: array<f32>;
@group(0) @binding(2) var<storage, read> qs: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
@group(0) @binding(7) var<storage, read_write> res: array<f32>;

// score of query t, head h against key row j (sinks use the sink-rotated query).
fn score(t: u32, h: u32, j: u32) -> f32 {
  let qb = (t * p.heads + h) * D;
  let kb = (j * p.kv_heads + h / G) * D;
  var s = 0.0;
  if (j < p.sink) {
    for (var d = 0u; d < D; d++) {
      s += qs[qb + d] * k[kb + d];
    }
  } else {
    for (var d = 0u; d < D; d++) {
      s += qa[qb + d] * k[kb + d];
    }
  }
  return s * p.scale;
}

// forward: out = softmax(s)·V for one (query, head), online softmax over the visible
// key rows in [p.lo, p.hi); res is out.
@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  if (i >= p.t * p.heads) {
    return;
  }
  let t = i / p.heads;
  if (p.lo > t) {
    return; // finished by an earlier chunk
  }
  let h = i - t * p.heads;
  let g = h / G;
  let ob = i * D;
  var m = -3.0e38;
  var l = 0.0;
  var acc = array<f32, D>();
  if (p.lo != 0u) {
    m = stats[2u * i];
    l = stats[2u * i + 1u];
    for (var d = 0u; d < D; d++) {
      acc[d] = res[ob + d];
    }
  }
  // visible keys: sinks [0, ns), then window rows [first, t] (first >= sink >= ns)
  let ns = min(p.sink, t + 1u);
  let first = lo(t);
  let hi = min(t + 1u, p.hi);
  for (var j = p.lo; j < hi; j++) {
    if (j >= ns && j < first) {
      j = first - 1u; // skip to the window (continuing counts the step)
      continue;
    }
    let s = score(t, h, j);
    let mn = max(m, s);
    let c = exp(m - mn);
    let e = exp(s - mn);
    l = l * c + e;
    let vb = (j * p.kv_heads + g) * D;
    for (var d = 0u; d < D; d++) {
      acc[d] = acc[d] * c + e * v[vb + d];
    }
    m = mn;
  }
  if (hi == t + 1u) {
    for (var d = 0u; d < D; d++) {
      res[ob + d] = acc[d] / l;
    }
    stats[2u * i] = m + log(l);
  } else {
    for (var d = 0u; d < D; d++) {
      res[ob + d] = acc[d];
    }
    stats[2u * i] = m;
    stats[2u * i + 1u] = l;
  }
}

// delta: stats[.., 1] = Σ_d dout∘out per (query, head); res is out.
@compute @workgroup_size(WG)
fn delta(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  if (i >= p.t * p.heads) {
    return;
  }
  var s = 0.0;
  for (var d = 0u; d < D; d++) {
    s += dout[i * D + d] * res[i * D + d];
  }
  stats[2u * i + 1u] = s;
}

// dq: gradient of qa (which 0: window keys) or qs (which 1: sinks) for one
// (query, head); res is dq.
@compute @workgroup_size(WG)
fn dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  if (i >= p.t * p.heads) {
    return;
  }
  let t = i / p.heads;
  let h = i - t * p.heads;
  let g = h / G;
  let lse = stats[2u * i];
  let dl = stats[2u * i + 1u];
  var acc = array<f32, D>();
  var j0 = lo(t);
  var j1 = t + 1u;
  if (p.which == 1u) {
    j0 = 0u;
    j1 = min(p.sink, t + 1u);
  }
  j0 = max(j0, p.lo);
  j1 = min(j1, p.hi);
  if (p.lo != 0u && j0 >= j1) {
    return; // nothing to add in this chunk
  }
  for (var j = j0; j < j1; j++) {
    let pr = exp(score(t, h, j) - lse);
    let vb = (j * p.kv_heads + g) * D;
    var dp = 0.0;
    for (var d = 0u; d < D; d++) {
      dp += dout[i * D + d] * v[vb + d];
    }
    let ds = pr * (dp - dl) * p.scale;
    for (var d = 0u; d < D; d++) {
      acc[d] += ds * k[vb + d];
    }
  }
  for (var d = 0u; d < D; d++) {
    if (p.lo != 0u) {
      acc[d] += res[i * D + d];
    }
    res[i * D + d] = acc[d];
  }
}

// dkv: gradients of key row j and value row j for one KV head, over the
// queries and heads that see it; res is [2T, KVH*D]: dk rows, then dv rows.
@compute @workgroup_size(WG)
fn dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat(wid, nwg, lid);
  if (i >= p.t * p.kv_heads) {
    return;
  }
  let j = i / p.kv_heads;
  let g = i - j * p.kv_heads;
  let kb = i * D;
  // sinks are seen by every later query; window row j by queries t with lo(t) <= j
  var t1 = p.t;
  if (j >= p.sink) {
    t1 = min(p.t, j + p.window);
  }
  t1 = min(t1, p.hi);
  let t0 = max(j, p.lo);
  if (p.lo != 0u && t0 >= t1) {
    return; // nothing to add in this chunk
  }
  var vj = array<f32, D>();
  for (var d = 0u; d < D; d++) {
    vj[d] = v[kb + d];
  }
  var ak = array<f32, D>();
  var av = array<f32, D>();
  for (var t = t0; t < t1; t++) {
    for (var hh = 0u; hh < G; hh++) {
      let h = g * G + hh;
      let th = t * p.heads + h;
      let pr = exp(score(t, h, j) - stats[2u * th]);
      let ob = th * D;
      var dp = 0.0;
      for (var d = 0u; d < D; d++) {
        let o = dout[ob + d];
        av[d] += pr * o;
        dp += o * vj[d];
      }
      let ds = pr * (dp - stats[2u * th + 1u]) * p.scale;
      if (j < p.sink) {
        for (var d = 0u; d < D; d++) {
          ak[d] += ds * qs[ob + d];
        }
      } else {
        for (var d = 0u; d < D; d++) {
          ak[d] += ds * qa[ob + d];
        }
      }
    }
  }
  let vb = p.t * p.kv_heads * D + kb;
  for (var d = 0u; d < D; d++) {
    if (p.lo != 0u) {
      ak[d] += res[kb + d];
      av[d] += res[vb + d];
    }
    res[kb + d] = ak[d];
    res[vb + d] = av[d];
  }
}
