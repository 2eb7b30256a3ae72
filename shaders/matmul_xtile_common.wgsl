// The shared parts of matmul_vec4_xtile.wgsl and matmul_q_xtile.wgsl (spliced in by
// #include; not a kernel): the including file declares p, x0..x3, bias and y, and the
// constants TM, TN, B.

// vec4 o of binding a (a is a constant in the written-out row loop, so the binding is
// chosen at compile time).
fn xload(a: u32, o: u32) -> vec4<f32> {
  if (a == 0u) {
    return x0[o];
  }
  if (a == 1u) {
    return x1[o];
  }
  if (a == 2u) {
    return x2[o];
  }
  return x3[o];
}

// acc + dot(xv, wv) as a chain of fused multiply-adds.
fn fdot(acc: f32, xv: vec4<f32>, wv: vec4<f32>) -> f32 {
  return fma(xv.w, wv.w, fma(xv.z, wv.z, fma(xv.y, wv.y, fma(xv.x, wv.x, acc))));
}

// store_tile writes an invocation's TM x TN tile of y for row block rb from column j0:
// tile row a is window row a*B + rb; rows before p.first (an overlapping last window) and
// columns past n are not stored. (naga indexes an array passed by value with constants
// only, so the loops are written out.)
fn store_tile(acc: array<array<f32, TN>, TM>, rb: u32, j0: u32) {
  #unroll a TM
  {
    let i = a * B + rb; // the window row of the tile's row a
    #unroll c TN
    if (i >= p.first && j0 + c < p.n) {
      store(i, j0 + c, acc[a][c]);
    }
    #end c
  }
  #end a
}
