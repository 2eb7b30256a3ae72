// The q8_0/q4_0 word decoders of matmul_q_kernels.wgsl and matmul_q_xtile.wgsl (spliced
// in by #include; not a kernel): a word's four quants as f32.

// The four int8 of a word, in byte order.
fn i8x4(q: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(q << 24u, q << 16u, q << 8u, q)) >> vec4<u32>(24u));
}

// The low nibbles of a word's four bytes, minus 8; shift the word right by 4 for the high ones.
fn u4x4(q: u32) -> vec4<f32> {
  return vec4<f32>(vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) & vec4<u32>(15u)) - vec4<f32>(8.0);
}

// The same without the offset, for sums that subtract 8 * sum(x) once per block.
fn n4x4(q: u32) -> vec4<f32> {
  return vec4<f32>(vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) & vec4<u32>(15u));
}
