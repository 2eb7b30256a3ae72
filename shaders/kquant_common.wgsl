// K-quant super-block decoding shared by matmul_k.wgsl and embedding_k.wgsl (spliced in by
// #include; not a kernel). The including file declares `w: array<u32>` (one weight part's
// raw GGUF bytes as words) and the constant WTYPE (4 q4_k, 5 q5_k, 6 q6_k).
//
// A super-block holds 256 elements, read as 8 units of 32: unit u covers elements
// [32u, 32u + 32). unit_scales gives a unit's two multipliers, unit_q its unsigned quants
// four at a time (qi = 0..7: elements 4qi..4qi+3 of the unit), deq combines them.
//   q4_k (144 bytes): f16 d, f16 dmin; 12 bytes of 6-bit (scale, min) pairs (ggml's
//     get_scale_min_k4); 128 bytes qs: unit u takes the low (u even) or high (u odd)
//     nibbles of qs[32(u/2) ..+32]. x = d*scale_u*q - dmin*min_u.
//   q5_k (176 bytes): as q4_k, with 32 bytes qh between the scales and qs: bit u of qh[l]
//     adds 16 to element l of unit u.
//   q6_k (210 bytes, so odd super-blocks start 2 bytes into a word): 128 bytes ql, 64 qh,
//     16 int8 scales (one per 16 elements), f16 d. Unit u = 4n + k (half n, quarter k):
//     element l has its low 4 bits in nibble k/2 of ql[64n + 32(k%2) + l], its high 2 bits
//     at bit 2k of qh[32n + l], its scale in scales[8n + 2k + l/16]; x = d*scale*(q - 32).
// Every multi-byte field lies at an even offset, so word_at reads any of them.

fn sb_bytes() -> u32 {
  if (WTYPE == 4u) {
    return 144u;
  }
  if (WTYPE == 5u) {
    return 176u;
  }
  return 210u;
}

// The four bytes from even byte offset o.
fn word_at(o: u32) -> u32 {
  let i = o >> 2u;
  if ((o & 2u) == 0u) {
    return w[i];
  }
  return (w[i] >> 16u) | (w[i + 1u] << 16u);
}

// The f16 at even byte offset o, as f32.
fn half_at(o: u32) -> f32 {
  return unpack2x16float(w[o >> 2u] >> ((o & 2u) * 8u)).x;
}

fn byte_of(v: u32, b: u32) -> u32 {
  return (v >> (8u * b)) & 0xffu;
}

fn bytes4(v: u32) -> vec4<f32> {
  return vec4<f32>(vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u) & vec4<u32>(0xffu));
}

// Unit u's multipliers in the super-block at byte o: (d*scale, dmin*min) for q4_k and q5_k
// (o is word aligned); (d*scale of elements 0-15, d*scale of 16-31) for q6_k.
fn unit_scales(o: u32, u: u32) -> vec2<f32> {
  if (WTYPE == 6u) {
    let v = word_at(o + 192u + 8u * (u / 4u) + 2u * (u % 4u));
    let d = half_at(o + 208u);
    let s0 = f32(bitcast<i32>(v << 24u) >> 24u);
    let s1 = f32(bitcast<i32>(v << 16u) >> 24u);
    return vec2<f32>(d * s0, d * s1);
  }
  let b = o >> 2u;
  let dm = unpack2x16float(w[b]);
  let s0 = w[b + 1u];
  let s1 = w[b + 2u];
  let s2 = w[b + 3u];
  var sc: u32;
  var mn: u32;
  if (u < 4u) {
    sc = byte_of(s0, u) & 63u;
    mn = byte_of(s1, u) & 63u;
  } else {
    let j = u - 4u;
    sc = (byte_of(s2, j) & 15u) | ((byte_of(s0, j) >> 6u) << 4u);
    mn = (byte_of(s2, j) >> 4u) | ((byte_of(s1, j) >> 6u) << 4u);
  }
  return vec2<f32>(dm.x * f32(sc), dm.y * f32(mn));
}

// Unsigned quants of elements 4qi..4qi+3 of unit u in the super-block at byte o.
fn unit_q(o: u32, u: u32, qi: u32) -> vec4<f32> {
  if (WTYPE == 6u) {
    let n = u / 4u;
    let k = u % 4u;
    let lo = word_at(o + 64u * n + 32u * (k & 1u) + 4u * qi) >> (4u * (k >> 1u));
    let hi = word_at(o + 128u + 32u * n + 4u * qi) >> (2u * k);
    return bytes4((lo & 0x0f0f0f0fu) | ((hi & 0x03030303u) << 4u));
  }
  let b = o >> 2u;
  let shift = 4u * (u & 1u);
  if (WTYPE == 4u) {
    return bytes4((w[b + 4u + 8u * (u / 2u) + qi] >> shift) & 0x0f0f0f0fu);
  }
  let v = (w[b + 12u + 8u * (u / 2u) + qi] >> shift) & 0x0f0f0f0fu;
  let h = (w[b + 4u + qi] >> u) & 0x01010101u;
  return bytes4(v | (h << 4u));
}

// The values of elements 4qi..4qi+3 of a unit from its multipliers s and quants q.
fn deq(s: vec2<f32>, qi: u32, q: vec4<f32>) -> vec4<f32> {
  if (WTYPE == 6u) {
    return select(s.x, s.y, qi >= 4u) * (q - vec4<f32>(32.0));
  }
  return s.x * q - vec4<f32>(s.y);
}
