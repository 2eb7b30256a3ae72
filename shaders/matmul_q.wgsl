// Matrix product y = x·Wᵀ (+ bias) (+ y) for GGUF block weights (q8_0, q4_0; K a multiple
// of 32), dequantised in the kernel. x is read in 16-byte loads; W as 32-bit words, since its
// 34- and 18-byte blocks are not word aligned: each block is read as the whole words that
// hold it (9 for q8_0, 5 for q4_0), and two-word shifts realign its quants.
//
// Bindings (all entry points):
//   1 x    (read) f32 [m, k] as vec4, row stride k/4
//   2 w    (read) one weight part, [n, k/32] blocks as raw words
//   3 bias (read) f32 [>= col0 + n] (any read-only buffer when p.bias == 0)
//   4 y    (rw)   f32 [m, ldy]; this part writes columns [col0, col0 + n)
// Entry points and dispatch (engine.Grid over x and y; z as stated):
//   matvec:    R consecutive output columns per invocation, no barriers (CPU adapters);
//              Grid(ceil(n/R), WG), z = m.
//   matvec_wg: one workgroup per output column, each invocation a quarter block at a time,
//              then a tree reduction in shared memory (GPUs); Grid(n, 1) workgroups of WG,
//              z = m.
//   tiled:     a TM x TN register tile of y per invocation: TM rows of x shared by the
//              workgroup, TN rows of W per invocation, each block dequantised once per tile
//              (prefill); workgroups (ceil(ceil(n/TN)/WG), ceil(m/TM), 1).
// Constants: WTYPE (2 q8_0, 3 q4_0), WG (a power of two for matvec_wg), R, TM, TN.
// Block layouts (GGUF): q8_0 = f16 scale, 32 int8 (34 bytes); q4_0 = f16 scale, 16 bytes
// whose low nibbles are elements 0-15 and high nibbles 16-31, value (q - 8) * scale.

#include "matmul_common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

#include "matmul_q_kernels.wgsl"
