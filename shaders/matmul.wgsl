// Matrix product y = x·Wᵀ (+ bias) (+ y), general layouts: any K for f32 and f16, K a
// multiple of 32 for the GGUF block types. Weights are read as 32-bit words only, so rows
// may start anywhere (odd f16 rows, 34- and 18-byte blocks). matmul_vec4.wgsl holds the
// same kernels with 16-byte loads for aligned shapes.
//
// Bindings (all entry points):
//   1 x    (read) f32 [m, k], row stride k
//   2 w    (read) one weight part, [n, k] of WTYPE as raw words
//   3 bias (read) f32 [>= col0 + n] (any read-only buffer when p.bias == 0)
//   4 y    (rw)   f32 [m, ldy]; this part writes columns [col0, col0 + n)
// Entry points and dispatch (engine.Grid over x and y; z as stated):
//   matvec:   one output column per invocation, no barriers or shared memory (the fast path
//             on CPU adapters, where a workgroup's invocations are SIMD lanes);
//             Grid(n, WG), z = m.
//   matvec_wg: one workgroup per output column, each invocation strides over k, then a tree
//             reduction in shared memory (the fast path on GPUs); Grid(n, 1) with WG
//             invocations per workgroup, z = m.
//   tiled:    each invocation computes a TM x TN register tile of y, reading each x and W
//             element once per tile (prefill); Grid(ceil(m/TM) * ceil(n/TN), WG).
// Constants: WTYPE (0 f32, 1 f16, 2 q8_0, 3 q4_0), WG (power of two for matvec_wg), TM, TN.
// Block layouts (GGUF): q8_0 = f16 scale, 32 int8 (34 bytes); q4_0 = f16 scale, 16 bytes
// whose low nibbles are elements 0-15 and high nibbles 16-31, value (q - 8) * scale.

struct Params {
  m: u32,     // rows of x and y
  n: u32,     // rows of this weight part = columns of y it writes
  k: u32,     // columns of x and W
  ldy: u32,   // row stride of y (the whole weight's rows)
  col0: u32,  // first column of y this part writes (its first weight row)
  acc: u32,   // 1: y += x·Wᵀ, 0: y = x·Wᵀ
  bias: u32,  // 1: add bias[col0 + j]
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn x4(i: u32) -> vec4<f32> {
  return vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
}

fn f32_4(i: u32) -> vec4<f32> {
  return bitcast<vec4<f32>>(vec4<u32>(w[i], w[i + 1u], w[i + 2u], w[i + 3u]));
}

// Four int8 values of a word, in byte order.
fn i8x4(q: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(q << 24u, q << 16u, q << 8u, q)) >> vec4<u32>(24u));
}

// Nibbles 0, 2, 4, 6 (the low nibble of each byte) minus 8; shift q right by 4 for the high ones.
fn u4x4(q: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) & vec4<u32>(15u))) - vec4<f32>(8.0);
}

// A quant block g (counted from the start of the part) occupies whole words w0..w0+NW-1:
// blocks are 34 or 18 bytes, so an even block starts on a word and its quants sit two bytes
// into it, and an odd block starts mid-word and its quants are word aligned.
fn block_word(g: u32) -> u32 {
  if (WTYPE == 2u) {
    return (g * 17u) >> 1u;
  }
  return (g * 9u) >> 1u;
}

// Quant word j (bytes 4j..4j+3 after the scale) of a block whose words start at b.
fn qword(b: u32, odd: bool, j: u32) -> u32 {
  let hi = w[b + j + 1u];
  if (odd) {
    return hi;
  }
  return (w[b + j] >> 16u) | (hi << 16u);
}

fn block_scale(b: u32, odd: bool) -> f32 {
  let s = unpack2x16float(w[b]);
  return select(s.x, s.y, odd);
}

// Dot product of block g with x[xo .. xo+32).
fn block_dot(g: u32, xo: u32) -> f32 {
  let b = block_word(g);
  let odd = (g & 1u) == 1u;
  var s = vec4<f32>(0.0);
  if (WTYPE == 2u) {
    for (var j = 0u; j < 8u; j++) {
      s += x4(xo + 4u * j) * i8x4(qword(b, odd, j));
    }
  } else {
    for (var j = 0u; j < 4u; j++) {
      let q = qword(b, odd, j);
      s += x4(xo + 4u * j) * u4x4(q) + x4(xo + 16u + 4u * j) * u4x4(q >> 4u);
    }
  }
  return block_scale(b, odd) * (s.x + s.y + s.z + s.w);
}

// Dot product of weight row r with x row starting at xo, k elements.
fn row_dot(r: u32, xo: u32) -> f32 {
  let k = p.k;
  var s = vec4<f32>(0.0);
  var t = 0.0;
  if (WTYPE == 0u) {
    let b = r * k;
    let k4 = k & ~3u;
    for (var e = 0u; e < k4; e += 4u) {
      s += x4(xo + e) * f32_4(b + e);
    }
    for (var e = k4; e < k; e++) {
      t += x[xo + e] * bitcast<f32>(w[b + e]);
    }
  } else if (WTYPE == 1u) {
    // Halfword h0 = r*k starts the row; with odd k, odd rows start mid-word.
    let h0 = r * k;
    var e = h0 & 1u;
    if (e == 1u) {
      t = x[xo] * unpack2x16float(w[h0 >> 1u]).y;
    }
    let b = (h0 + e) >> 1u; // word holding elements e, e+1
    let n8 = e + ((k - e) & ~7u);
    var wi = b;
    for (; e < n8; e += 8u) {
      let a = unpack2x16float(w[wi]);
      let c = unpack2x16float(w[wi + 1u]);
      let d = unpack2x16float(w[wi + 2u]);
      let f = unpack2x16float(w[wi + 3u]);
      s += x4(xo + e) * vec4<f32>(a, c) + x4(xo + e + 4u) * vec4<f32>(d, f);
      wi += 4u;
    }
    for (; e + 1u < k; e += 2u) {
      let a = unpack2x16float(w[wi]);
      t += x[xo + e] * a.x + x[xo + e + 1u] * a.y;
      wi += 1u;
    }
    if (e < k) {
      t += x[xo + e] * unpack2x16float(w[wi]).x;
    }
  } else {
    let nb = k / 32u;
    for (var i = 0u; i < nb; i++) {
      t += block_dot(r * nb + i, xo + 32u * i);
    }
  }
  return (s.x + s.y) + (s.z + s.w) + t;
}

fn store(i: u32, j: u32, v: f32) {
  var r = v;
  if (p.bias != 0u) {
    r += bias[p.col0 + j];
  }
  let o = i * p.ldy + p.col0 + j;
  if (p.acc != 0u) {
    r += y[o];
  }
  y[o] = r;
}

@compute @workgroup_size(WG)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j = (wid.y * nwg.x + wid.x) * WG + lid.x;
  let i = wid.z;
  if (j < p.n && i < p.m) {
    store(i, j, row_dot(j, i * p.k));
  }
}

// Elements [u*UNIT, (u+1)*UNIT) of row r against x row xo: the work unit of one invocation
// in matvec_wg (4 elements, or a quarter block for quant types, so 32 invocations share a
// row of 1024 even when quantised).
fn unit_dot(r: u32, xo: u32, u: u32) -> f32 {
  let k = p.k;
  if (WTYPE == 0u) {
    let e = 4u * u;
    if (e + 4u <= k) {
      return dot(x4(xo + e), f32_4(r * k + e));
    }
    var t = 0.0;
    for (var i = e; i < k; i++) {
      t += x[xo + i] * bitcast<f32>(w[r * k + i]);
    }
    return t;
  }
  if (WTYPE == 1u) {
    var t = 0.0;
    for (var i = 4u * u; i < min(4u * u + 4u, k); i++) {
      let h = r * k + i;
      let v = unpack2x16float(w[h >> 1u]);
      t += x[xo + i] * select(v.x, v.y, (h & 1u) == 1u);
    }
    return t;
  }
  let g = r * (k / 32u) + u / 4u;
  let q = u % 4u;
  let b = block_word(g);
  let odd = (g & 1u) == 1u;
  let xb = xo + 32u * (u / 4u);
  var s: vec4<f32>;
  if (WTYPE == 2u) {
    s = x4(xb + 8u * q) * i8x4(qword(b, odd, 2u * q)) + x4(xb + 8u * q + 4u) * i8x4(qword(b, odd, 2u * q + 1u));
  } else {
    // Quarter q holds elements 4q..4q+3 and 16+4q..16+4q+3.
    let v = qword(b, odd, q);
    s = x4(xb + 4u * q) * u4x4(v) + x4(xb + 16u + 4u * q) * u4x4(v >> 4u);
  }
  return block_scale(b, odd) * (s.x + s.y + s.z + s.w);
}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn matvec_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // The row index is uniform over the workgroup, so every invocation reaches the barriers.
  let j = wid.y * nwg.x + wid.x;
  let i = wid.z;
  let units = select((p.k + 3u) / 4u, p.k / 8u, WTYPE >= 2u);
  var t = 0.0;
  if (j < p.n) {
    for (var u = lid.x; u < units; u += WG) {
      t += unit_dot(j, i * p.k, u);
    }
  }
  partial[lid.x] = t;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid.x < s) {
      partial[lid.x] += partial[lid.x + s];
    }
  }
  if (lid.x == 0u && j < p.n) {
    store(i, j, partial[0]);
  }
}

// One k-step of the register tile: weight values of rows jr[0..TN) at elements [e, e+4).
fn wvec(jr: u32, e: u32) -> vec4<f32> {
  let k = p.k;
  if (WTYPE == 0u) {
    return f32_4(jr * k + e);
  }
  // f16 with k even here (odd k goes through the scalar tail below).
  let b = (jr * k + e) >> 1u;
  return vec4<f32>(unpack2x16float(w[b]), unpack2x16float(w[b + 1u]));
}

fn wscalar(jr: u32, e: u32) -> f32 {
  let h = jr * p.k + e;
  if (WTYPE == 0u) {
    return bitcast<f32>(w[h]);
  }
  let v = unpack2x16float(w[h >> 1u]);
  return select(v.x, v.y, (h & 1u) == 1u);
}

@compute @workgroup_size(WG)
fn tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tile = (wid.y * nwg.x + wid.x) * WG + lid.x;
  let tn = (p.n + TN - 1u) / TN;
  let ti = tile / tn;
  if (ti * TM >= p.m) {
    return;
  }
  let i0 = ti * TM;
  let j0 = (tile % tn) * TN;
  let k = p.k;
  // Rows past the edge repeat the last row (in range, never stored), so the inner loops
  // stay branch-free.
  var xo: array<u32, TM>;
  for (var a = 0u; a < TM; a++) {
    xo[a] = min(i0 + a, p.m - 1u) * k;
  }
  var jr: array<u32, TN>;
  for (var c = 0u; c < TN; c++) {
    jr[c] = min(j0 + c, p.n - 1u);
  }
  var acc: array<array<f32, TN>, TM>;
  if (WTYPE <= 1u) {
    // f16 rows start mid-word when k is odd: use the vector step only for even k.
    let k4 = select(k & ~3u, 0u, WTYPE == 1u && (k & 1u) == 1u);
    for (var e = 0u; e < k4; e += 4u) {
      var xv: array<vec4<f32>, TM>;
      for (var a = 0u; a < TM; a++) {
        xv[a] = x4(xo[a] + e);
      }
      for (var c = 0u; c < TN; c++) {
        let wv = wvec(jr[c], e);
        for (var a = 0u; a < TM; a++) {
          acc[a][c] += dot(xv[a], wv);
        }
      }
    }
    for (var e = k4; e < k; e++) {
      for (var c = 0u; c < TN; c++) {
        let wv = wscalar(jr[c], e);
        for (var a = 0u; a < TM; a++) {
          acc[a][c] += x[xo[a] + e] * wv;
        }
      }
    }
  } else {
    let nb = k / 32u;
    for (var blk = 0u; blk < nb; blk++) {
      for (var c = 0u; c < TN; c++) {
        let g = jr[c] * nb + blk;
        let b = block_word(g);
        let odd = (g & 1u) == 1u;
        let d = block_scale(b, odd);
        // Zeroed explicitly: naga hoists loop-body variables and initialises them once.
        var s: array<vec4<f32>, TM>;
        for (var a = 0u; a < TM; a++) {
          s[a] = vec4<f32>(0.0);
        }
        if (WTYPE == 2u) {
          for (var q = 0u; q < 8u; q++) {
            let wv = i8x4(qword(b, odd, q));
            for (var a = 0u; a < TM; a++) {
              s[a] += x4(xo[a] + 32u * blk + 4u * q) * wv;
            }
          }
        } else {
          for (var q = 0u; q < 4u; q++) {
            let v = qword(b, odd, q);
            let lo = u4x4(v);
            let hi = u4x4(v >> 4u);
            for (var a = 0u; a < TM; a++) {
              let xb = xo[a] + 32u * blk + 4u * q;
              s[a] += x4(xb) * lo + x4(xb + 16u) * hi;
            }
          }
        }
        for (var a = 0u; a < TM; a++) {
          acc[a][c] += d * (s[a].x + s[a].y + s[a].z + s[a].w);
        }
      }
    }
  }
  for (var a = 0u; a < TM; a++) {
    for (var c = 0u; c < TN; c++) {
      if (i0 + a < p.m && j0 + c < p.n) {
        store(i0 + a, j0 + c, acc[a][c]);
      }
    }
  }
}
