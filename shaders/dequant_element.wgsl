// Shared by embedding.wgsl and matmul_bwd.wgsl (spliced in by #include; not a kernel):
// one element of a row-major [rows, p.d] matrix of WTYPE (0 f32, 1 f16, 2 q8_0, 3 q4_0)
// held as raw words in `table`, dequantised as the GGUF block layouts say (q8_0: f16
// scale, 32 int8; q4_0: f16 scale, 16 bytes of nibbles, low = elements 0-15, value
// (q - 8) * scale). The including file declares table and p (with d).

// Byte b of the part.
fn byte_at(b: u32) -> u32 {
  return (table[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu;
}

// The f16 at even byte offset b, as f32.
fn half_at(b: u32) -> f32 {
  return unpack2x16float(table[b >> 2u] >> ((b & 2u) * 8u)).x;
}

// Element c of part row r.
fn element(r: u32, c: u32) -> f32 {
  if (WTYPE == 0u) {
    return bitcast<f32>(table[r * p.d + c]);
  }
  if (WTYPE == 1u) {
    let h = r * p.d + c;
    let v = unpack2x16float(table[h >> 1u]);
    return select(v.x, v.y, (h & 1u) == 1u);
  }
  let blk = r * (p.d / 32u) + c / 32u;
  let i = c % 32u;
  if (WTYPE == 2u) {
    let o = blk * 34u;
    let q = bitcast<i32>(byte_at(o + 2u + i) << 24u) >> 24u;
    return f32(q) * half_at(o);
  }
  let o = blk * 18u;
  let q = (byte_at(o + 2u + i % 16u) >> ((i / 16u) * 4u)) & 15u;
  return (f32(q) - 8.0) * half_at(o);
}
