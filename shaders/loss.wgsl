// Per-row negative log-likelihood of target tokens, for perplexity: reads
// back one float per token instead of a row of vocabulary logits.
//
// Bindings: @binding(0) uniform Params {rows, vocab}
//           @binding(1) logits (read) f32 [rows, vocab]
//           @binding(2) targets (read) u32 [rows]
//           @binding(3) nll (rw) f32 [rows]: logsumexp(logits[r]) - logits[r, targets[r]]
// Dispatch: engine.Grid(rows, WG); one invocation per row, no barriers (a
// stable two-pass log-sum-exp: max, then sum of exp(x - max)).
// Constants: WG.

struct Params {
  rows: u32,
  vocab: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> nll: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (r >= p.rows) {
    return;
  }
  let base = r * p.vocab;
  var mx = logits[base];
  for (var i = 1u; i < p.vocab; i++) {
    mx = max(mx, logits[base + i]);
  }
  var sum = 0.0;
  for (var i = 0u; i < p.vocab; i++) {
    sum += exp(logits[base + i] - mx);
  }
  let t = min(targets[r], p.vocab - 1u);
  nll[r] = log(sum) + mx - logits[base + t];
}
