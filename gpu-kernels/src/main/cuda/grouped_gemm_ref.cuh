// grouped_gemm_ref.cuh: plain SIMT reference bodies of the four grouped GEMMs (v0). Slow and simple on purpose:
// one thread per row of a 128-row block, 128 output columns per CTA, the K loop over 16-byte chunks of the
// tile-packed layouts of grouped_gemm.cuh. They define the function the fast kernels must match and stay exported
// as *_ref entry points for checks on the GPU.
// Each body computes output tile `tile` (128 columns) of row block `rb` with threads 0..127 (one row each).
// As *_ref kernels: grid (N / 128, max_row_blocks), block 128 threads, no dynamic shared memory.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include "grouped_gemm.cuh"

namespace moe_ref {

__device__ __forceinline__ float bf16_dot16(uint4 a, uint4 b) {
    const __nv_bfloat162* x = reinterpret_cast<const __nv_bfloat162*>(&a);
    const __nv_bfloat162* y = reinterpret_cast<const __nv_bfloat162*>(&b);
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        float2 fx = __bfloat1622float2(x[i]), fy = __bfloat1622float2(y[i]);
        s = fmaf(fx.x, fy.x, s);
        s = fmaf(fx.y, fy.y, s);
    }
    return s;
}

__device__ __forceinline__ float e4m3_dot16(uint4 a, uint4 b) {
    const __nv_fp8x2_e4m3* x = reinterpret_cast<const __nv_fp8x2_e4m3*>(&a);
    const __nv_fp8x2_e4m3* y = reinterpret_cast<const __nv_fp8x2_e4m3*>(&b);
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        float2 fx = float2(x[i]), fy = float2(y[i]);
        s = fmaf(fx.x, fy.x, s);
        s = fmaf(fx.y, fy.y, s);
    }
    return s;
}

// Dot product of activation row `row` with weight row `wrow` of expert e, bf16, fp32 accumulation.
__device__ float dot_bf16(const uint8_t* A, uint32_t row, const uint8_t* W, uint32_t e, uint32_t wrow, uint32_t wrows, uint32_t K) {
    float acc = 0.f;
    for (uint32_t col = 0; col < K; col += 8) {
        uint4 a = *reinterpret_cast<const uint4*>(A + moe_act_offset(row, col, K, 2));
        uint4 w = __ldg(reinterpret_cast<const uint4*>(W + moe_weight_offset(e, wrow, col, wrows, K, 2)));
        acc += bf16_dot16(a, w);
    }
    return acc;
}

// FP8 dot product: per 128-column K block, the e4m3 partial sum times scale_a * scale_b, added into fp32.
__device__ float dot_fp8(const uint8_t* A, const float* A_scale, uint32_t row, const uint8_t* W, const float* W_scale,
                         uint32_t e, uint32_t wrow, uint32_t orig_row, uint32_t wrows, uint32_t K) {
    float acc = 0.f;
    const uint32_t kblocks = K / 128;
    const float* ws = W_scale + ((uint64_t)e * (wrows / 128) + orig_row / 128) * kblocks;
    for (uint32_t kb = 0; kb < kblocks; ++kb) {
        float part = 0.f;
        for (uint32_t col = kb * 128; col < kb * 128 + 128; col += 16) {
            uint4 a = *reinterpret_cast<const uint4*>(A + moe_act_offset(row, col, K, 1));
            uint4 w = __ldg(reinterpret_cast<const uint4*>(W + moe_weight_offset(e, wrow, col, wrows, K, 1)));
            part += e4m3_dot16(a, w);
        }
        acc += part * (A_scale[moe_act_scale_offset(row, kb, K)] * __ldg(ws + kb));
    }
    return acc;
}

__device__ __forceinline__ uint32_t gate_packed_row(uint32_t n) { return (n >> 3) * 16u + (n & 7u); }

__device__ void gemm1_swiglu_bf16(const uint8_t* A, const uint8_t* W1, __nv_bfloat16* Hout, const int* block_expert,
                                  int K, int N, uint32_t rb, uint32_t tile) {
    const uint32_t e = (uint32_t)block_expert[rb];
    const uint32_t row = rb * 128 + threadIdx.x;
    uint8_t* H = reinterpret_cast<uint8_t*>(Hout);
    for (uint32_t n = tile * 128; n < tile * 128 + 128; ++n) {
        uint32_t pg = gate_packed_row(n);
        float g = dot_bf16(A, row, W1, e, pg, 2 * N, K);
        float u = dot_bf16(A, row, W1, e, pg + 8, 2 * N, K);
        *reinterpret_cast<__nv_bfloat16*>(H + moe_act_offset(row, n, N, 2)) = __float2bfloat16_rn(moe_swiglu(g, u));
    }
}

__device__ void gemm2_bf16(const uint8_t* A, const uint8_t* W2, float* Y, const float* row_weight, const int* block_expert,
                           int K, int N, uint32_t rb, uint32_t tile) {
    const uint32_t e = (uint32_t)block_expert[rb];
    const uint32_t row = rb * 128 + threadIdx.x;
    const float w = row_weight[row];
    for (uint32_t n = tile * 128; n < tile * 128 + 128; ++n)
        Y[(uint64_t)row * N + n] = w * dot_bf16(A, row, W2, e, n, N, K);
}

// Two passes over the 128 output columns (amax, then quantize), recomputing h identically, so no staging memory.
__device__ void gemm1_swiglu_fp8(const uint8_t* A, const float* A_scale, const uint8_t* W1, const float* W1_scale, uint8_t* Hout,
                                 float* Hout_scale, const int* block_expert, int K, int N, uint32_t rb, uint32_t tile) {
    const uint32_t e = (uint32_t)block_expert[rb];
    const uint32_t row = rb * 128 + threadIdx.x;
    const uint32_t n0 = tile * 128;
    float amax = 0.f;
    for (int pass = 0; pass < 2; ++pass) {
        const float mult = moe_fp8_multiplier(amax);
        for (uint32_t n = n0; n < n0 + 128; ++n) {
            uint32_t pg = gate_packed_row(n);
            float g = dot_fp8(A, A_scale, row, W1, W1_scale, e, pg, n, 2 * N, K);
            float u = dot_fp8(A, A_scale, row, W1, W1_scale, e, pg + 8, N + n, 2 * N, K);
            float h = moe_swiglu(g, u);
            if (pass == 0) amax = fmaxf(amax, fabsf(h));
            else Hout[moe_act_offset(row, n, N, 1)] = moe_to_e4m3(h * mult);
        }
    }
    Hout_scale[moe_act_scale_offset(row, n0 / 128, N)] = moe_fp8_scale(amax);
}

__device__ void gemm2_fp8(const uint8_t* A, const float* A_scale, const uint8_t* W2, const float* W2_scale, float* Y,
                          const float* row_weight, const int* block_expert, int K, int N, uint32_t rb, uint32_t tile) {
    const uint32_t e = (uint32_t)block_expert[rb];
    const uint32_t row = rb * 128 + threadIdx.x;
    const float w = row_weight[row];
    for (uint32_t n = tile * 128; n < tile * 128 + 128; ++n)
        Y[(uint64_t)row * N + n] = w * dot_fp8(A, A_scale, row, W2, W2_scale, e, n, n, N, K);
}

}  // namespace moe_ref
