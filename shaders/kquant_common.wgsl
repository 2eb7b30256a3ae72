// Decoding of GGUF's scaled-block weight types, shared by matmul_k.wgsl and embedding_k.wgsl
// (spliced in by #include; not a kernel): the K-quants and the 32-element types with a min,
// a fifth bit or a grid. The including file declares `w: array<u32>` (one weight part's raw
// GGUF bytes as words) and the constant WTYPE (4 q4_k, 5 q5_k, 6 q6_k, 7 q4_1, 8 q5_0,
// 9 q5_1, 10 iq4_nl).
//
// A block holds blk_units() units of 32 elements (8 for the K-quants' super-blocks of 256,
// 1 for the others): unit u covers elements [32u, 32u + 32). unit_scales gives a unit's two
// multipliers, unit_q its quants four at a time (qi = 0..7: elements 4qi..4qi+3 of the
// unit), deq combines them.
//   q4_k (144 bytes): f16 d, f16 dmin; 12 bytes of 6-bit (scale, min) pairs (ggml's
//     get_scale_min_k4); 128 bytes qs: unit u takes the low (u even) or high (u odd)
//     nibbles of qs[32(u/2) ..+32]. x = d*scale_u*q - dmin*min_u.
//   q5_k (176 bytes): as q4_k, with 32 bytes qh between the scales and qs: bit u of qh[l]
//     adds 16 to element l of unit u.
//   q6_k (210 bytes, so odd super-blocks start 2 bytes into a word): 128 bytes ql, 64 qh,
//     16 int8 scales (one per 16 elements), f16 d. Unit u = 4n + k (half n, quarter k):
//     element l has its low 4 bits in nibble k/2 of ql[64n + 32(k%2) + l], its high 2 bits
//     at bit 2k of qh[32n + l], its scale in scales[8n + 2k + l/16]; x = d*scale*(q - 32).
//   q4_1 (20 bytes): f16 d, f16 m, 16 bytes qs (low nibbles elements 0-15, high 16-31);
//     x = d*q + m.
//   q5_0 (22 bytes): f16 d, u32 qh, qs as q4_1; bit e of qh is bit 4 of element e;
//     x = d*(q - 16).
//   q5_1 (24 bytes): f16 d, f16 m, u32 qh, qs; x = d*q + m.
//   iq4_nl (18 bytes): f16 d, qs as q4_1 indexing the grid below; x = d*grid[q].
// Every multi-byte field lies at an even offset, so word_at reads any of them.

// a variable, since naga can't index a constant array dynamically
var<private> iq4nl: array<f32, 16> = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
  1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);

fn blk_units() -> u32 {
  if (WTYPE <= 6u) {
    return 8u;
  }
  return 1u;
}

fn sb_bytes() -> u32 {
  switch (WTYPE) {
    case 4u: { return 144u; }
    case 5u: { return 176u; }
    case 6u: { return 210u; }
    case 7u: { return 20u; }
    case 8u: { return 22u; }
    case 9u: { return 24u; }
    default: { return 18u; }
  }
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

// Unit u's multipliers in the block at byte o: (d*scale, dmin*min) for q4_k and q5_k
// (o is word aligned); (d*scale of elements 0-15, d*scale of 16-31) for q6_k; (d, -m),
// (d, 16d) or (d, 0) for the 32-element types, so that x = s.x*q - s.y.
fn unit_scales(o: u32, u: u32) -> vec2<f32> {
  if (WTYPE == 7u || WTYPE == 9u) {
    let dm = unpack2x16float(w[o >> 2u]); // q4_1 and q5_1 blocks are word aligned
    return vec2<f32>(dm.x, -dm.y);
  }
  if (WTYPE == 8u) {
    let d = half_at(o);
    return vec2<f32>(d, 16.0 * d);
  }
  if (WTYPE == 10u) {
    return vec2<f32>(half_at(o), 0.0);
  }
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

// bit i of h (i < 4) moved to bit 8i: four bits spread over four bytes.
fn spread4(h: u32) -> u32 {
  return (h & 1u) | ((h & 2u) << 7u) | ((h & 4u) << 14u) | ((h & 8u) << 21u);
}

// Quants of elements 4qi..4qi+3 of unit u in the block at byte o (unsigned, or the grid's
// values for iq4_nl).
fn unit_q(o: u32, u: u32, qi: u32) -> vec4<f32> {
  if (WTYPE >= 7u) {
    var qs = 4u; // q4_1
    if (WTYPE == 8u) {
      qs = 6u;
    } else if (WTYPE == 9u) {
      qs = 8u;
    } else if (WTYPE == 10u) {
      qs = 2u;
    }
    let v = (word_at(o + qs + 4u * (qi % 4u)) >> (4u * (qi / 4u))) & 0x0f0f0f0fu;
    if (WTYPE == 10u) {
      return vec4<f32>(iq4nl[v & 0xffu], iq4nl[(v >> 8u) & 0xffu], iq4nl[(v >> 16u) & 0xffu], iq4nl[v >> 24u]);
    }
    if (WTYPE == 8u || WTYPE == 9u) {
      let qh = word_at(o + qs - 4u);
      return bytes4(v | (spread4((qh >> (4u * qi)) & 15u) << 4u));
    }
    return bytes4(v);
  }
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
