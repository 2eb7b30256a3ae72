// Index of the largest element of a flat f32 array (greedy sampling over a
// vocabulary); ties go to the lowest index. If any element is NaN or
// infinite the answer is NONE (0xffffffff), which no vocabulary index is: a
// free check that the model's numbers stayed finite. The test reads the
// exponent bits, since WGSL lets compilers assume floats are finite.
//
// Bindings: @binding(0) uniform Params; x (read) [n] f32; out (read_write) [1] u32.
// Dispatch: exactly one workgroup of WG invocations. Each invocation scans a
// strided slice (increasing indices, so a strict > keeps the lowest index),
// then one barrier, then invocation 0 merges the WG candidates in order.
// Constants: WG.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

var<workgroup> bestValue: array<f32, WG>;
var<workgroup> bestIndex: array<u32, WG>;
var<workgroup> sawNonFinite: array<u32, WG>;

const NONE = 0xffffffffu;

// 1 when v is NaN or infinite (all exponent bits set), else 0.
fn nonFinite(v: f32) -> u32 {
  return select(0u, 1u, (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u);
}

@compute @workgroup_size(WG)
fn argmax(@builtin(local_invocation_id) lid: vec3<u32>) {
  var bv = 0.0;
  var bi = NONE;
  var bad = 0u;
  if (lid.x < p.n) {
    bv = x[lid.x];
    bi = lid.x;
    bad = nonFinite(bv);
  }
  for (var i = lid.x + WG; i < p.n; i += WG) {
    let v = x[i];
    bad |= nonFinite(v);
    if (v > bv) {
      bv = v;
      bi = i;
    }
  }
  bestValue[lid.x] = bv;
  bestIndex[lid.x] = bi;
  sawNonFinite[lid.x] = bad;
  workgroupBarrier();
  if (lid.x != 0u) {
    return;
  }
  for (var l = 1u; l < WG; l++) {
    bad |= sawNonFinite[l];
    let v = bestValue[l];
    let i = bestIndex[l];
    if (i != NONE && (v > bv || (v == bv && i < bi))) {
      bv = v;
      bi = i;
    }
  }
  out[0] = select(bi, NONE, bad != 0u);
}
