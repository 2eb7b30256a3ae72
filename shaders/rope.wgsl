// Rotary position embedding of f32 [rows, heads * head_dim], one position
// per row, in both GGUF conventions: adjacent pairs (x[2i], x[2i+1]) for
// 'llama', split halves (x[i], x[i + RD/2]) for NeoX/qwen2. Pair i turns by
// theta_i = pos / scale * base^(-2i/RD) (negated when inverse); dims past RD
// are copied unchanged.
//
// Angles are exact to about 2e-7 rad at any position: the launcher bakes
// each pair's turns per position, frac(base^(-2i/RD) / scale / 2pi), into
// the shader as a 64-bit fixed-point constant TURNS (hi, lo words), so
// pos * turns mod 1 is computed in wrapping u32 arithmetic and only the
// final fraction of a turn is rounded to f32. (An f32 angle pos * freq loses
// about 1e-4 rad at position 4096.)
//
// Bindings: @binding(0) uniform Params; x (read) f32 [rows, heads*head_dim];
//   pos (read) u32 [rows]; y (read_write) f32 [rows, heads*head_dim].
// Dispatch: engine.Grid(rows * heads * (RD/2 + head_dim - RD), WG): per
//   (row, head), RD/2 invocations rotate one pair each and head_dim - RD copy.
// Constants: WG, RD (rope dims, even), TURNS (array<u32, RD>).

struct Params {
  rows: u32,
  heads: u32,
  head_dim: u32,
  neox: u32,
  inverse: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const HALF = RD / 2u;
// a variable, since naga can't index a constant array dynamically
var<private> turns: array<u32, RD> = TURNS;
const TAU = 6.283185307179586;

// mulhi is the high word of the 64-bit product a * b.
fn mulhi(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let mid = a1 * b0 + (a0 * b0 >> 16u); // < 2^32
  let mid2 = a0 * b1 + (mid & 0xffffu);
  return a1 * b1 + (mid >> 16u) + (mid2 >> 16u);
}

// angle is pair i's rotation at position q, in [-pi, pi).
fn angle(q: u32, i: u32) -> f32 {
  let frac = q * turns[2u * i] + mulhi(q, turns[2u * i + 1u]); // wraps mod 2^32 = whole turns
  return f32(bitcast<i32>(frac)) * (TAU / 4294967296.0);
}

@compute @workgroup_size(WG)
fn rope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  let jobs = HALF + p.head_dim - RD;
  let rowHead = i / jobs;
  if (rowHead >= p.rows * p.heads) {
    return;
  }
  let job = i - rowHead * jobs;
  let base = rowHead * p.head_dim;
  if (job >= HALF) {
    let d = base + RD + (job - HALF);
    y[d] = x[d];
    return;
  }
  var a = base + 2u * job;
  var b = a + 1u;
  if (p.neox != 0u) {
    a = base + job;
    b = a + HALF;
  }
  var theta = angle(pos[rowHead / p.heads], job);
  if (p.inverse != 0u) {
    theta = -theta;
  }
  let c = cos(theta);
  let s = sin(theta);
  let xa = x[a];
  let xb = x[b];
  y[a] = xa * c - xb * s;
  y[b] = xa * s + xb * c;
}
