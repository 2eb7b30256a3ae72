// The kernels of matmul_q.wgsl and matmul_q_ux.wgsl (spliced in by #include; not a
// kernel): the including file declares p, x, w, bias and y.
// Words per pair of blocks: 17 (q8_0, 68 bytes) or 9 (q4_0, 36 bytes). (naga cannot
// evaluate select() in a constant.)
const PW = 33u - 8u * WTYPE;

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

#include "matmul_q_unpack.wgsl"

// Block g (counted from the start of the part) lies in whole words from block_word(g): an
// even block starts on a word and its quants start two bytes into it; an odd block starts
// two bytes into a word and its quants are word aligned.
fn block_word(g: u32) -> u32 {
  return (g * PW) >> 1u; // block bytes / 4 = PW / 2
}

// Quant word j (bytes 4j..4j+3 after the scale) of the block whose words start at b.
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

// Dot product of block g with the 32 x elements from vec4 index xi.
fn block_dot(g: u32, xi: u32) -> f32 {
  let b = block_word(g);
  let odd = (g & 1u) == 1u;
  var s = vec4<f32>(0.0);
  if (WTYPE == 2u) {
    for (var j = 0u; j < 8u; j++) {
      s += x[xi + j] * i8x4(qword(b, odd, j));
    }
  } else {
    for (var j = 0u; j < 4u; j++) {
      let q = qword(b, odd, j);
      s += x[xi + j] * u4x4(q) + x[xi + 4u + j] * u4x4(q >> 4u);
    }
  }
  return block_scale(b, odd) * hsum(s);
}

@compute @workgroup_size(WG)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j0 = ((wid.y * nwg.x + wid.x) * WG + lid.x) * R;
  let i = wid.z;
  if (j0 >= p.n || i >= p.m) {
    return;
  }
  let nb = p.k / 32u;
  let xo = i * (p.k / 4u);
  var t: array<f32, R>;
  if ((nb & 1u) == 1u) {
    // An odd number of blocks per row: rows alternate in layout, so take block by block.
    for (var a = 0u; a < R; a++) {
      let j = min(j0 + a, p.n - 1u);
      for (var b = 0u; b < nb; b++) {
        t[a] += block_dot(j * nb + b, xo + 8u * b);
      }
    }
  } else {
    // Every row starts on a word, and a pair of blocks has a fixed layout: the even block's
    // scale in the low half of word 0 and its quants two bytes on; the odd block's scale in
    // the high half of word PW/2 and its quants in the words after.
    var wb: array<u32, R>;
    for (var a = 0u; a < R; a++) {
      wb[a] = min(j0 + a, p.n - 1u) * (nb / 2u) * PW;
    }
    for (var b = 0u; b < nb; b += 2u) {
      let xi = xo + 8u * b;
      var sa: array<vec4<f32>, R>;
      var sb: array<vec4<f32>, R>;
      var prev: array<u32, R>;
      var da: array<f32, R>;
      // Zeroed explicitly: naga hoists loop-body variables and initialises them once.
      for (var a = 0u; a < R; a++) {
        sa[a] = vec4<f32>(0.0);
        sb[a] = vec4<f32>(0.0);
        prev[a] = w[wb[a]];
        da[a] = unpack2x16float(prev[a]).x;
      }
      if (WTYPE == 2u) {
        for (var j = 0u; j < 8u; j++) {
          let xv = x[xi + j];
          for (var a = 0u; a < R; a++) {
            let cur = w[wb[a] + 1u + j];
            sa[a] += xv * i8x4((prev[a] >> 16u) | (cur << 16u));
            prev[a] = cur;
          }
        }
        for (var j = 0u; j < 8u; j++) {
          let xv = x[xi + 8u + j];
          for (var a = 0u; a < R; a++) {
            sb[a] += xv * i8x4(w[wb[a] + 9u + j]);
          }
        }
      } else {
        // sum x (q - 8) = sum x q - 8 sum x: the offset once per block, not per element.
        var xsa = vec4<f32>(0.0);
        var xsb = vec4<f32>(0.0);
        for (var j = 0u; j < 4u; j++) {
          let xl = x[xi + j];
          let xh = x[xi + 4u + j];
          xsa += xl + xh;
          for (var a = 0u; a < R; a++) {
            let cur = w[wb[a] + 1u + j];
            let q = (prev[a] >> 16u) | (cur << 16u);
            sa[a] += xl * n4x4(q) + xh * n4x4(q >> 4u);
            prev[a] = cur;
          }
        }
        for (var j = 0u; j < 4u; j++) {
          let xl = x[xi + 8u + j];
          let xh = x[xi + 12u + j];
          xsb += xl + xh;
          for (var a = 0u; a < R; a++) {
            let q = w[wb[a] + 5u + j];
            sb[a] += xl * n4x4(q) + xh * n4x4(q >> 4u);
          }
        }
        for (var a = 0u; a < R; a++) {
          sa[a] -= 8.0 * xsa;
          sb[a] -= 8.0 * xsb;
        }
      }
      // prev is now word PW/2: its high half is the odd block's scale.
      for (var a = 0u; a < R; a++) {
        t[a] += da[a] * hsum(sa[a]) + unpack2x16float(prev[a]).y * hsum(sb[a]);
        wb[a] += PW;
      }
    }
  }
  for (var a = 0u; a < R; a++) {
    if (j0 + a < p.n) {
      store(i, j0 + a, t[a]);
    }
  }
}

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn matvec_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // The column is uniform over the workgroup, so every invocation reaches the barriers.
  let j = wid.y * nwg.x + wid.x;
  let i = wid.z;
  let nb = p.k / 32u;
  var t = 0.0;
  if (j < p.n) {
    // Unit u is quarter u%4 of block u/4: 8 quants (q8_0: words 2q, 2q+1; q4_0: word q,
    // both nibbles), so 32 invocations share a row of 1024 even when quantised.
    for (var u = lid.x; u < 4u * nb; u += WG) {
      let g = j * nb + u / 4u;
      let q = u % 4u;
      let b = block_word(g);
      let odd = (g & 1u) == 1u;
      let xi = i * (p.k / 4u) + 8u * (u / 4u);
      var s: vec4<f32>;
      if (WTYPE == 2u) {
        s = x[xi + 2u * q] * i8x4(qword(b, odd, 2u * q)) + x[xi + 2u * q + 1u] * i8x4(qword(b, odd, 2u * q + 1u));
      } else {
        let v = qword(b, odd, q);
        s = x[xi + q] * u4x4(v) + x[xi + 4u + q] * u4x4(v >> 4u);
      }
      t += block_scale(b, odd) * hsum(s);
    }
  }
  partial[lid.x] = t;
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    workgroupBarrier();
    if (lid.x < h) {
      partial[lid.x] += partial[lid.x + h];
    }
  }
  if (lid.x == 0u && j < p.n) {
    store(i, j, partial[0]);
  }
}

@compute @workgroup_size(WG)
fn tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i0 = wid.y * TM; // uniform over the workgroup
  let j0 = (wid.x * WG + lid.x) * TN;
  if (j0 >= p.n) {
    return;
  }
  let nb = p.k / 32u;
  // Rows and columns past the edge repeat the last one (in range, never stored), so the
  // inner loops stay branch-free.
  var xo: array<u32, TM>;
  for (var a = 0u; a < TM; a++) {
    xo[a] = min(i0 + a, p.m - 1u) * (p.k / 4u);
  }
  var jr: array<u32, TN>;
  for (var c = 0u; c < TN; c++) {
    jr[c] = min(j0 + c, p.n - 1u);
  }
  // Each block is dequantised (scale folded in) once per tile and used for TM rows of x.
  var acc: array<array<f32, TN>, TM>;
  for (var blk = 0u; blk < nb; blk++) {
    var bw: array<u32, TN>;
    var odd: array<bool, TN>;
    var d: array<f32, TN>;
    for (var c = 0u; c < TN; c++) {
      let g = jr[c] * nb + blk;
      bw[c] = block_word(g);
      odd[c] = (g & 1u) == 1u;
      d[c] = block_scale(bw[c], odd[c]);
    }
    if (WTYPE == 2u) {
      for (var q = 0u; q < 8u; q++) {
        var wv: array<vec4<f32>, TN>;
        for (var c = 0u; c < TN; c++) {
          wv[c] = d[c] * i8x4(qword(bw[c], odd[c], q));
        }
        for (var a = 0u; a < TM; a++) {
          let xv = x[xo[a] + 8u * blk + q];
          for (var c = 0u; c < TN; c++) {
            acc[a][c] += dot(xv, wv[c]);
          }
        }
      }
    } else {
      for (var q = 0u; q < 4u; q++) {
        var lo: array<vec4<f32>, TN>;
        var hi: array<vec4<f32>, TN>;
        for (var c = 0u; c < TN; c++) {
          let v = qword(bw[c], odd[c], q);
          lo[c] = d[c] * u4x4(v);
          hi[c] = d[c] * u4x4(v >> 4u);
        }
        for (var a = 0u; a < TM; a++) {
          let xi = xo[a] + 8u * blk + q;
          let xl = x[xi];
          let xh = x[xi + 4u];
          for (var c = 0u; c < TN; c++) {
            acc[a][c] += dot(xl, lo[c]) + dot(xh, hi[c]);
          }
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
