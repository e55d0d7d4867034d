// grouped_gemm.cuh: the device-memory layouts shared by the grouped GEMMs (grouped_gemm.cu), the dispatch kernel
// (which writes GEMM1's A) and GEMM1's epilogue (which writes GEMM2's A). Light on purpose: offsets and the FP8
// activation recipe only, so other kernel families can include it.
//
// Why tile-packed layouts: JCuda 12.6 cannot encode TMA tensor maps, so the GEMMs load every tile with ONE 1-D
// bulk copy (cp.async.bulk ... mbarrier::complete_tx). That needs each tile contiguous in global memory and already
// in the shared-memory image wgmma reads with its 128-byte swizzle (K-major, "SW128"): rows of 128 bytes, the
// 16-byte chunk c of row r stored at chunk position c ^ (r % 8).
//
// ACTIVATIONS (A of GEMM1 = dispatch output; A of GEMM2 = GEMM1 output), [m_padded rows, K cols], elements of
// `esize` bytes (bf16: 2, e4m3: 1), K % 128 == 0, m_padded % 128 == 0 (the M-grouped contiguous layout: each
// expert's rows start at a multiple of 128). Row blocks of 128 rows are stored one after another; inside a row
// block, K is cut into 128-byte column slabs (64 bf16 / 128 e4m3 columns), each slab is 128 rows x 128 bytes =
// 16 KiB, swizzled as above:
//   offset(row, col) = (row / 128) * (128 * K * esize) + slab * 16384 + (row % 128) * 128
//                      + (((byte / 16) ^ (row % 8)) * 16) + byte % 16,   slab = col*esize / 128, byte = col*esize % 128
// The buffer size is m_padded * K * esize, the same as row-major.
// ACTIVATION SCALES (FP8 only): one fp32 per row per 128 columns, stored per row block: [row/128][K/128][row%128]
//   (moe_act_scale_offset). A 128-row block's scales for one K block are 512 contiguous bytes.
//
// WEIGHTS ([rows, K] per expert, "K-major" like the checkpoint's [out, in]): per expert, K is cut into 128-byte slabs
// and each slab holds all `rows` rows of 128 bytes, swizzled by row % 8 (moe_weight_offset). Any run of rows that
// starts at a multiple of 8 is one contiguous tile. W1 (gate and up, 2*I rows) is stored with gate and up
// INTERLEAVED in groups of 8 rows: packed row p holds gate row (p/16)*8 + p%8 when p%16 < 8, else up row
// (p/16)*8 + p%8 (moe_w1_packed_row), so one wgmma accumulator holds g and u of the same output column in the same
// thread and SwiGLU needs no data exchange. W2 (down, H rows) keeps its row order.
// WEIGHT SCALES (FP8 only): fp32 [E][rows/128][K/128] in the checkpoint's own row order (W1: gate rows 0..I-1
// then up rows I..2I-1, i.e. the row blocks of the concatenation [gate; up]), as DeepSeek's `_scale_inv`.
//
// OUTPUTS: GEMM1 writes Hout in the ACTIVATION layout above with K = I (and, FP8, Hout_scale in the activation scale
// layout); GEMM2 writes Y as plain row-major fp32 [m_padded, N] (N = H), already multiplied by row_weight[row].
#pragma once
#include <cstdint>

#define MOE_GEMM_BLOCK_M 128

// Byte offset of element (row, col) of an activation matrix with K columns of esize bytes (see above).
__host__ __device__ __forceinline__ uint64_t moe_act_offset(uint32_t row, uint32_t col, uint32_t K, uint32_t esize) {
    uint32_t byte_in_row = col * esize;
    uint32_t slab = byte_in_row >> 7, byte = byte_in_row & 127u;
    uint32_t chunk = (byte >> 4) ^ (row & 7u);
    return (uint64_t)(row >> 7) * (128ull * K * esize) + (uint64_t)slab * 16384u + (row & 127u) * 128u + chunk * 16u + (byte & 15u);
}

// Float index of the FP8 scale of (row, K block kb) of an activation matrix with K columns.
__host__ __device__ __forceinline__ uint64_t moe_act_scale_offset(uint32_t row, uint32_t kb, uint32_t K) {
    return (uint64_t)(row >> 7) * (K / 128u) * 128u + (uint64_t)kb * 128u + (row & 127u);
}

// Byte offset of element (row, col) of expert e's weight matrix [rows, K] (row = packed row for W1).
__host__ __device__ __forceinline__ uint64_t moe_weight_offset(uint32_t e, uint32_t row, uint32_t col, uint32_t rows,
                                                               uint32_t K, uint32_t esize) {
    uint32_t byte_in_row = col * esize;
    uint32_t slab = byte_in_row >> 7, byte = byte_in_row & 127u;
    uint32_t chunk = (byte >> 4) ^ (row & 7u);
    return (uint64_t)e * rows * K * esize + (uint64_t)slab * rows * 128u + (uint64_t)row * 128u + chunk * 16u + (byte & 15u);
}

// The row of [gate; up] (2I rows) stored at packed W1 row p.
__host__ __device__ __forceinline__ uint32_t moe_w1_packed_row(uint32_t p, uint32_t I) {
    uint32_t base = (p >> 4) * 8u + (p & 7u);
    return (p & 8u) ? I + base : base;
}

#ifdef __CUDACC__
#include <cuda_fp8.h>
// silu(g) * u in fp32 (the recipe: silu(g) = g / (1 + exp(-g))), with expf and an IEEE division: the reference
// kernels and the small-batch path.
__device__ __forceinline__ float moe_swiglu(float g, float u) { return g / (1.0f + expf(-g)) * u; }
// The same formula for two elements on the special-function unit: exp as ex2.approx of -g log2(e), and both divisions
// as products with ONE rcp.approx of the two denominators' product (2 x ex2 + 1 rcp instead of 2 + 2: that unit is what
// the epilogue waits for). exp(-g) is clamped at 2^63 so the product stays finite: below g = -43.6 silu(g) comes out as
// g 2^-63 instead of g exp(g) (both under 1e-17 |g|). Elsewhere within ~4e-7 relative of the exact value for |g| < 4,
// ~1e-6 to |g| = 16 and ~2e-6 to 40 (the fp32 rounding of -g log2(e) grows with |g|; simulated with exact exp2 and
// reciprocal, ex2.approx adds ~2 ulp), instead of moe_swiglu's ~20 dependent instructions and slow-path branch per
// element (the IEEE division). Used by the grouped GEMM1 epilogues, where the accurate form was ~10 % of the FP8
// kernel's warp samples while the tensor cores idled (docs/kernel-notes.md v13). Specials: NaN stays NaN; g = -inf
// gives -inf (moe_swiglu: NaN); g = +inf gives inf * u.
__device__ __forceinline__ void moe_swiglu_fast_x2(float g0, float u0, float g1, float u1, float& h0, float& h1) {
    float e0, e1, r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e0) : "f"(g0 * -1.4426950408889634f));
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e1) : "f"(g1 * -1.4426950408889634f));
    const float d0 = 1.0f + fminf(e0, 0x1p63f), d1 = 1.0f + fminf(e1, 0x1p63f);
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(d0 * d1));
    h0 = g0 * (d1 * r) * u0;
    h1 = g1 * (d0 * r) * u1;
}

// The FP8 activation recipe for one block: scale = amax/448 (1 when amax < 2^-64, where 448/amax could overflow:
// such a block is all zero, as in Fp8Quantizer.ZERO_BLOCK_AMAX); the multiplier 448/amax is one fp32
// division; e4m3 conversion rounds to nearest even and saturates to +-448 (cvt ... satfinite).
__device__ __forceinline__ float moe_fp8_scale(float amax) { return amax < 0x1p-64f ? 1.0f : amax / 448.0f; }
__device__ __forceinline__ float moe_fp8_multiplier(float amax) { return amax < 0x1p-64f ? 0.0f : 448.0f / amax; }
__device__ __forceinline__ uint8_t moe_to_e4m3(float x) {
    return (uint8_t)__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
}
// Two values packed little-endian (lo first) in one 16-bit word.
__device__ __forceinline__ uint16_t moe_to_e4m3x2(float lo, float hi) {
    return (uint16_t)__nv_cvt_float2_to_fp8x2(make_float2(lo, hi), __NV_SATFINITE, __NV_E4M3);
}
#endif
