// FreqKV compression spread over decode steps (compress_spread.go): the compression is a
// fixed linear map of the span, y = C x with C = sqrt(m/L) DCT-III_m trunc_m DCT-II_L an
// [m, L] matrix, so each span row's share C[:, j] x_j can be added to an accumulator as soon
// as the row is stored, a few rows per step. The step that needs the compression then only
// adds the last rows' shares and writes the sums into the cache (the recent rows then move
// up, compress.go).
//
// Bindings (all entry points):
//   0 p     uniform Params
//   1 cache (rw) the group's matrices, f32 words or f16 pairs in u32 (F16), matrix b's row r
//           at element p.base + (b * p.bstride + r) * 4 * p.c4
//   2 table (read) f32 [L][m]: table[j * m + k] = C[k, j], made in float64 (compress_spread.go)
//   3 acc   (rw) f32 [matrices][m][C] as vec4, matrix b of the group at b + p.acc0
// Entry points, dispatch ((ceil(m / (KB*WG)), C/4, matrices) workgroups of WG, matrix
// b = boff + z; each invocation takes KB consecutive rows k):
//   accumulate: acc[b][k] += sum over j in [j0, j0 + nrows) of C[k, j] * row S + j of matrix b,
//               for matrices b = boff + z of the group; j0 = 0 starts the sum (acc = ...)
//   finish:     row S + k of matrix b = acc[b][k] + the same sum; the rows it reads, S + j0
//               on, must not be among those it writes: j0 >= m (the launcher checks), as at
//               the end of a spread compression
// Constants: WG, KB, F16 (0 f32 cache, 1 f16). Channels must be a multiple of 4.

struct Params {
  j0: u32,      // first span row to accumulate (relative to the sink)
  nrows: u32,   // span rows to accumulate
  sink: u32,    // S
  kept: u32,    // m
  c4: u32,      // channels / 4
  bstride: u32, // rows between consecutive matrices
  base: u32,    // element offset of the group's matrix 0, row 0 in the cache binding
  acc0: u32,    // the group's first matrix in acc
  boff: u32,    // first matrix of the group this dispatch takes
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> cache: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc: array<vec4<f32>>;

// Element offset of channel 4q of row r of matrix b.
fn elem(b: u32, r: u32, q: u32) -> u32 {
  return p.base + (b * p.bstride + r) * 4u * p.c4 + 4u * q;
}

fn load4(e: u32) -> vec4<f32> {
  if (F16 == 1u) {
    let w = e / 2u;
    return vec4<f32>(unpack2x16float(cache[w]), unpack2x16float(cache[w + 1u]));
  }
  return bitcast<vec4<f32>>(vec4<u32>(cache[e], cache[e + 1u], cache[e + 2u], cache[e + 3u]));
}

fn store4(e: u32, v: vec4<f32>) {
  if (F16 == 1u) {
    let w = e / 2u;
    cache[w] = pack2x16float(v.xy);
    cache[w + 1u] = pack2x16float(v.zw);
    return;
  }
  let u = bitcast<vec4<u32>>(v);
  cache[e] = u.x;
  cache[e + 1u] = u.y;
  cache[e + 2u] = u.z;
  cache[e + 3u] = u.w;
}

fn acc_index(b: u32, k: u32, q: u32) -> u32 {
  return ((p.acc0 + b) * p.kept + k) * p.c4 + q;
}

// The shares of span rows [j0, j0+nrows) for output rows k0..k0+KB-1 (those below m) of
// channels 4q..4q+3 of matrix b: each cache load serves KB output rows (llvmpipe's loads
// cost per instruction). Rows past m repeat row m-1's table entries, never stored.
fn shares(b: u32, k0: u32, q: u32) -> array<vec4<f32>, KB> {
  var s: array<vec4<f32>, KB>;
  for (var t = 0u; t < KB; t++) {
    s[t] = vec4<f32>(0.0); // naga hoists loop variables; zero explicitly
  }
  for (var j = p.j0; j < p.j0 + p.nrows; j++) {
    let x = load4(elem(b, p.sink + j, q));
    for (var t = 0u; t < KB; t++) {
      s[t] += table[j * p.kept + min(k0 + t, p.kept - 1u)] * x;
    }
  }
  return s;
}

@compute @workgroup_size(WG)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k0 = gid.x * KB;
  let q = gid.y;
  let b = gid.z + p.boff;
  if (k0 >= p.kept || q >= p.c4) {
    return;
  }
  var s = shares(b, k0, q);
  for (var t = 0u; t < KB && k0 + t < p.kept; t++) {
    let a = acc_index(b, k0 + t, q);
    if (p.j0 == 0u) {
      acc[a] = s[t];
    } else {
      acc[a] += s[t];
    }
  }
}

@compute @workgroup_size(WG)
fn finish(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k0 = gid.x * KB;
  let q = gid.y;
  let b = gid.z + p.boff;
  if (k0 >= p.kept || q >= p.c4) {
    return;
  }
  var s = shares(b, k0, q);
  for (var t = 0u; t < KB && k0 + t < p.kept; t++) {
    store4(elem(b, p.sink + k0 + t, q), acc[acc_index(b, k0 + t, q)] + s[t]);
  }
}
