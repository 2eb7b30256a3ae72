// Per-row negative log-likelihood of target tokens, for perplexity: reads
// back one float per token instead of a row of vocabulary logits.
//
// Bindings: @binding(0) uniform Params {rows, vocab}
//           @binding(1) logits (read) f32 [rows, vocab]
//           @binding(2) targets (read) u32 [rows]
//           @binding(3) nll (rw) f32 [rows]: logsumexp(logits[r]) - logits[r, targets[r]]
// Dispatch: engine.Grid(rows * WG, WG), one workgroup per row. Each invocation
// reduces a strided slice (a stable two-pass log-sum-exp: max, then sum of
// exp(x - max)); after each pass a barrier and invocation 0 merges the WG
// partials in order. Strided slices keep every invocation's loop iterations at
// 2·vocab/WG + 2·WG: llvmpipe silently ends an invocation's loops after 65535
// iterations in all (docs/webgpu.md), which one invocation per row, looping
// over the whole vocabulary twice, passed from a 32768-token vocabulary on.
// Constants: WG.

struct Params {
  rows: u32,
  vocab: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> nll: array<f32>;

var<workgroup> part: array<f32, WG>;
var<workgroup> rowMax: f32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wid.y * nwg.x + wid.x; // uniform over the workgroup: all reach the barriers
  if (r >= p.rows) {
    return;
  }
  let base = r * p.vocab;
  var mx = -3.4028234663852886e38;
  for (var i = lid.x; i < p.vocab; i += WG) {
    mx = max(mx, logits[base + i]);
  }
  part[lid.x] = mx;
  workgroupBarrier();
  if (lid.x == 0u) {
    var m = part[0];
    for (var l = 1u; l < WG; l++) {
      m = max(m, part[l]);
    }
    rowMax = m;
  }
  workgroupBarrier();
  let m = rowMax;
  var sum = 0.0;
  for (var i = lid.x; i < p.vocab; i += WG) {
    sum += exp(logits[base + i] - m);
  }
  part[lid.x] = sum; // invocation 0 read the maxima before the second barrier

  workgroupBarrier();
  if (lid.x != 0u) {
    return;
  }
  var total = 0.0;
  for (var l = 0u; l < WG; l++) {
    total += part[l];
  }
  let t = min(targets[r], p.vocab - 1u);
  nll[r] = log(total) + m - logits[base + t];
}
