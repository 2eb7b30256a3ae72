// Shared by the kernels that read a quantised KV cache (spliced in by
// #include; not a kernel): ggml's q8_0 and q4_0 block layouts, read from a
// buffer of u32 words. Element e of a cache is element e%32 of block e/32;
// blocks are packed back to back (34 or 18 bytes, so a block starts on an
// even byte, and its f16 scale never straddles a word).
//   q8_0 (type 2): f16 scale d, then 32 int8 q;    x = d * q
//   q4_0 (type 3): f16 scale d, then 16 bytes;     x = d * (nibble - 8),
//                  byte j holds element j (low nibble) and j+16 (high)
// Types: 0 f32, 1 f16, 2 q8_0, 3 q4_0 (the KT/VT constants of the includers).

fn qBlockBytes(t: u32) -> u32 {
  return select(18u, 34u, t == 2u);
}

// qScaleAt is the byte address of element e's block scale.
fn qScaleAt(t: u32, e: u32) -> u32 {
  return (e / 32u) * qBlockBytes(t);
}

// qByteAt is the byte address of the byte holding element e.
fn qByteAt(t: u32, e: u32) -> u32 {
  let j = e % 32u;
  if (t == 2u) {
    return qScaleAt(t, e) + 2u + j;
  }
  return qScaleAt(t, e) + 2u + (j & 15u);
}

// qDecode is element e from the word holding its scale (sw) and the word
// holding its byte (bw).
fn qDecode(t: u32, e: u32, sw: u32, bw: u32) -> f32 {
  let d = unpack2x16float(sw)[(qScaleAt(t, e) >> 1u) & 1u];
  let b = (bw >> ((qByteAt(t, e) & 3u) * 8u)) & 0xffu;
  if (t == 2u) {
    return d * f32(bitcast<i32>(b << 24u) >> 24u);
  }
  let nib = select(b & 15u, b >> 4u, (e % 32u) >= 16u);
  return d * (f32(nib) - 8.0);
}
