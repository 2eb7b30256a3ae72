// matmul_vec4.wgsl's kernels with x in a uniform buffer, for the decode matvec on CPU
// adapters: llvmpipe turns a uniform load at an index all lanes share into one scalar load
// and a broadcast, where a storage load is a loop over the SIMD lanes with a branch per lane.
// x is the operand every lane reads alike, so this leaves the lane loops to W alone.
//
// Bindings: as matmul_vec4.wgsl, except
//   1 x    (uniform) f32 [m, k] as XV = m*k/4 vec4 (the binding covers exactly those rows;
//          at most the device's maxUniformBufferBindingSize, offset 256-byte aligned)
// Entry points and dispatch: matvec only (Grid(ceil(n/R), WG), z = m).
// Constants: as matmul_vec4.wgsl, plus XV.

#include "matmul_common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> x: array<vec4<f32>, XV>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

#include "matmul_vec4_kernels.wgsl"
