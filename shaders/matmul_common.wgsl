// Shared by matmul.wgsl, matmul_vec4.wgsl and matmul_q.wgsl (spliced in by
// #include; not a kernel): their parameter block and the epilogue that adds
// the bias and the accumulated y. The including file declares p, bias and y.

struct Params {
  m: u32,     // rows of x and y
  n: u32,     // rows of this weight part = columns of y it writes
  k: u32,     // columns of x and W
  ldy: u32,   // row stride of y (the whole weight's rows)
  col0: u32,  // first column of y this part writes (its first weight row)
  acc: u32,   // 1: y += x·Wᵀ, 0: y = x·Wᵀ
  bias: u32,  // 1: add bias[col0 + j]
  row0: u32,  // the y row of x's row 0 (the xtile kernels' x windows); 0 elsewhere
  first: u32, // the xtile kernels store x rows from this one (an overlapping last window)
}

fn store(i: u32, j: u32, v: f32) {
  var r = v;
  if (p.bias != 0u) {
    r += bias[p.col0 + j];
  }
  let o = (p.row0 + i) * p.ldy + p.col0 + j;
  if (p.acc != 0u) {
    r += y[o];
  }
  y[o] = r;
}
