// Shared definitions of the MoE pipeline kernels (route, dispatch, combine): layout constants and the FP8 recipe.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <stdint.h>
#include <math.h>

// Rows of one GEMM M block: every expert's rows start at a multiple of this (the m-grouped contiguous layout).
#define MOE_BLOCK_M 128
// Channels of one FP8 activation scale block (1 x 128).
#define MOE_QUANT_BLOCK 128
// Largest expert count the route kernel keeps in shared memory per warp.
#define MOE_MAX_EXPERTS 1024

// The FP8 recipe (moe_fp8_scale, moe_fp8_multiplier, moe_to_e4m3) and the activation layouts (moe_act_offset,
// moe_act_scale_offset) are the GEMM's, in grouped_gemm.cuh: the dispatch kernel writes GEMM1's A with them.
#include "grouped_gemm.cuh"

__device__ __forceinline__ float moe_e4m3_to_float(uint8_t q) {
  __half_raw h = __nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)q, __NV_E4M3);
  return __half2float(__half(h));
}

__device__ __forceinline__ float moe_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ int moe_warp_sum_int(int v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// fp32 logistic function, the CPU engine's formula (Router.sigmoid): 1 / (1 + (float) exp(-x)), exp in double.
__device__ __forceinline__ float moe_sigmoid(float x) {
  return 1.0f / (1.0f + (float)exp(-(double)x));
}
