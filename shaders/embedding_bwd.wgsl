// Embedding backward: dtable[ids[i], :] += dy[i, :] for every token i, without float
// atomics. The host groups the tokens by id (EmbeddingGradIndex), and one invocation per
// (distinct id, column) sums that id's rows of dy in token order, so the result is
// deterministic and no two invocations write one element.
//
// Bindings: @binding(0) uniform Params; then
//   index (read) u32 [2 * unique + 1 + t]: distinct ids ascending [unique], offsets
//     [unique + 1] into the token list, token indices grouped by id [t]
//   dy (read) f32 [t, d]
//   dtable (read_write) f32 [vocab, d]; ids >= vocab are skipped
// Dispatch: engine.Grid(unique * d, WG), one invocation per (distinct id, column).
// Constants: WG.

struct Params {
  unique: u32,
  t: u32,
  d: u32,
  vocab: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> index: array<u32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dtable: array<f32>;

@compute @workgroup_size(WG)
fn embedding_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let e = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (e >= p.unique * p.d) {
    return;
  }
  let u = e / p.d;
  let c = e - u * p.d;
  let id = index[u];
  if (id >= p.vocab) {
    return;
  }
  let toks = 2u * p.unique + 1u;
  var s = 0.0;
  for (var i = index[p.unique + u]; i < index[p.unique + u + 1u]; i++) {
    s += dy[index[toks + i] * p.d + c];
  }
  dtable[id * p.d + c] += s;
}
