// Matrix product y = x·Wᵀ (+ bias) (+ y) for f32 weights with K a multiple of 4 and f16
// weights with K a multiple of 8: every row then starts on 16 bytes, so x and W are read in
// 16-byte loads (4 f32 or 8 f16), which on llvmpipe run about twice as fast as the 32-bit
// loads of matmul.wgsl (docs/webgpu.md; matmul_bench_test.go).
//
// Bindings (all entry points):
//   1 x    (read) f32 [m, k] as vec4, row stride k/4
//   2 w    (read) one weight part, [n, k] of WTYPE as 16-byte groups (4 f32, or 8 f16)
//   3 bias (read) f32 [>= col0 + n] (any read-only buffer when p.bias == 0)
//   4 y    (rw)   f32 [m, ldy]; this part writes columns [col0, col0 + n)
// Entry points and dispatch (engine.Grid over x and y; z as stated):
//   matvec:    R consecutive output columns per invocation (each x load serves R rows of W),
//              no barriers (the fast path on CPU adapters); Grid(ceil(n/R), WG), z = m.
//   matvec_wg: one workgroup per output column, strided 16-byte loads, a tree reduction in
//              shared memory (GPUs); Grid(n, 1) workgroups of WG, z = m.
//   tiled:     a TM x TN register tile of y per invocation: TM rows of x shared by the
//              workgroup, TN rows of W per invocation (prefill);
//              workgroups (ceil(ceil(n/TN)/WG), ceil(m/TM), 1).
// Constants: WTYPE (0 f32, 1 f16), WG (a power of two for matvec_wg), R, TM, TN.

#include "matmul_common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

#include "matmul_vec4_kernels.wgsl"
