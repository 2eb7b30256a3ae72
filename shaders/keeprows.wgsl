// Keep rows: heavy-hitter eviction's compaction (kvcache's h2o policy). In each matrix b
// of a cache tensor (a K or V of one layer, rows [b*stride, (b+1)*stride)), for each KV
// head g independently, rows [sink, sink+keep) become the old rows idx[layer][g][i],
// i < keep, on that head's channels only: every head keeps its own rows. Rows before sink
// and the other heads' channels are untouched. idx[..][i] >= sink + i and increasing, but
// an in-place gather would still race (row i is read by j < i), so two passes go through
// a temp buffer.
//
//   gather:  temp[b][g][i][w] = cache[(b*stride + idx[layer(b)][g][i]) * row_words + g*head_words + w]
//   scatter: cache[(b*stride + sink + i) * row_words + g*head_words + w] = temp[b][g][i][w]
// with layer(b) = (m0 + b) / 2 (matrices are K, V, K, V... by layer) and words of u32
// (one f32, or two f16 channels: head_words = head_dim or head_dim / 2).
//
// Bindings: @binding(0) uniform Params; @binding(1) cache (read_write) u32 words;
// @binding(2) idx (read) u32 [layers][kv_heads][keep]; @binding(3) temp (read_write) u32
// [batches][kv_heads][keep][head_words].
// Constants: WG. Dispatch: both Grid(batches*kv_heads*keep*head_words, WG).

struct Params {
  sink: u32,
  keep: u32,
  stride: u32,      // rows between matrices
  row_words: u32,
  head_words: u32,
  kv_heads: u32,
  batches: u32,
  m0: u32,          // index of the binding's first matrix among all of the cache's
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> cache: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> temp: array<u32>;

struct Job {
  b: u32,
  g: u32,
  i: u32,
  w: u32,
}

fn job(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> Job {
  let n = (wid.y * nwg.x + wid.x) * WG + lid.x;
  let w = n % p.head_words;
  let r = n / p.head_words;
  let i = r % p.keep;
  let r2 = r / p.keep;
  let g = r2 % p.kv_heads;
  return Job(r2 / p.kv_heads, g, i, w);
}

@compute @workgroup_size(WG)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j = job(wid, nwg, lid);
  if (j.b >= p.batches) {
    return;
  }
  let layer = (p.m0 + j.b) / 2u;
  let src = idx[(layer * p.kv_heads + j.g) * p.keep + j.i];
  let t = ((j.b * p.kv_heads + j.g) * p.keep + j.i) * p.head_words + j.w;
  temp[t] = cache[(j.b * p.stride + src) * p.row_words + j.g * p.head_words + j.w];
}

@compute @workgroup_size(WG)
fn scatter(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j = job(wid, nwg, lid);
  if (j.b >= p.batches) {
    return;
  }
  let t = ((j.b * p.kv_heads + j.g) * p.keep + j.i) * p.head_words + j.w;
  cache[(j.b * p.stride + p.sink + j.i) * p.row_words + j.g * p.head_words + j.w] = temp[t];
}
