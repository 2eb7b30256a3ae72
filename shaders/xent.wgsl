// Fused softmax + negative log-likelihood over the vocabulary with its gradient, in place:
//   nll[r]       = logsumexp(logits[r]) - logits[r, targets[r]]
//   logits[r, i] = scale * (softmax(logits[r])_i - [i == targets[r]])   (dlogits, overwritten)
// A target >= vocab masks the row: nll 0 and a zero gradient row.
//
// Bindings: @binding(0) uniform Params; logits (read_write) f32 [rows, vocab];
//   targets (read) u32 [rows]; nll (read_write) f32 [rows].
// Dispatch: engine.Grid(rows * WG, WG), one workgroup per row. Each invocation reduces a
// strided slice; after a barrier every invocation sums the WG partials itself in the same
// order (max, then sum of exp). The invocation whose slice holds the target reads its
// logit before overwriting it, so no third barrier is needed.
// Constants: WG.

struct Params {
  rows: u32,
  vocab: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> nll: array<f32>;

var<workgroup> partA: array<f32, WG>;
var<workgroup> partB: array<f32, WG>;

@compute @workgroup_size(WG)
fn xent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= p.rows) {
    return;
  }
  let base = row * p.vocab;
  var m = -3.4028234663852886e38;
  for (var i = lid.x; i < p.vocab; i += WG) {
    m = max(m, logits[base + i]);
  }
  partA[lid.x] = m;
  workgroupBarrier();
  var mx = partA[0];
  for (var l = 1u; l < WG; l++) {
    mx = max(mx, partA[l]);
  }
  var s = 0.0;
  for (var i = lid.x; i < p.vocab; i += WG) {
    s += exp(logits[base + i] - mx);
  }
  partB[lid.x] = s;
  workgroupBarrier();
  var total = 0.0;
  for (var l = 0u; l < WG; l++) {
    total += partB[l];
  }
  let lse = mx + log(total);
  let tgt = targets[row];
  let valid = tgt < p.vocab;
  if (!valid && lid.x == 0u) {
    nll[row] = 0.0;
  }
  for (var i = lid.x; i < p.vocab; i += WG) {
    let x = logits[base + i];
    var g = exp(x - lse);
    if (i == tgt) {
      nll[row] = lse - x;
      g -= 1.0;
    }
    logits[base + i] = select(0.0, p.scale * g, valid);
  }
}
