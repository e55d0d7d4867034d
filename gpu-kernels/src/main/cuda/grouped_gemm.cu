// grouped_gemm.cu: the grouped GEMM entry points of the MoE pipeline (M-grouped contiguous layout, layouts in
// grouped_gemm.cuh). Every entry point reads the number of used 128-row blocks from device memory
// (num_row_blocks) and the expert of each block from block_expert, so no host synchronization is needed and the
// launches can be captured in a CUDA graph. Grid, block and dynamic shared memory of each entry point are given by
// dev.sparkmoe.kernels.GroupedGemmConfig.
//
// Arguments (all pointers device pointers; K and N are the GEMM's reduction and output widths, both % 128 == 0):
//   grouped_gemm1_swiglu_bf16(A bf16, W1 bf16 packed [E][2N,K], Hout bf16, block_expert, num_row_blocks, max_row_blocks, K, N)
//   grouped_gemm2_bf16(A bf16, W2 bf16 [E][N,K], Y f32, row_weight f32[m_padded], block_expert, num_row_blocks, max_row_blocks, K, N)
//   grouped_gemm1_swiglu_fp8(A e4m3, A_scale, W1 e4m3, W1_scale, Hout e4m3, Hout_scale, block_expert, num_row_blocks, max_row_blocks, K, N)
//   grouped_gemm2_fp8(A e4m3, A_scale, W2 e4m3, W2_scale, Y f32, row_weight, block_expert, num_row_blocks, max_row_blocks, K, N)
// The *_ref entry points take the same arguments and are the SIMT reference versions (grouped_gemm_ref.cuh).
#include "grouped_gemm_ref.cuh"

#define MOE_REF_BOUNDS __launch_bounds__(128)

extern "C" __global__ void MOE_REF_BOUNDS grouped_gemm1_swiglu_bf16_ref(
        const __nv_bfloat16* A, const __nv_bfloat16* W1, __nv_bfloat16* Hout, const int* block_expert,
        const int* num_row_blocks, int max_row_blocks, int K, int N) {
    moe_ref::gemm1_swiglu_bf16((const uint8_t*)A, (const uint8_t*)W1, Hout, block_expert, num_row_blocks, K, N);
}

extern "C" __global__ void MOE_REF_BOUNDS grouped_gemm2_bf16_ref(
        const __nv_bfloat16* A, const __nv_bfloat16* W2, float* Y, const float* row_weight, const int* block_expert,
        const int* num_row_blocks, int max_row_blocks, int K, int N) {
    moe_ref::gemm2_bf16((const uint8_t*)A, (const uint8_t*)W2, Y, row_weight, block_expert, num_row_blocks, K, N);
}

extern "C" __global__ void MOE_REF_BOUNDS grouped_gemm1_swiglu_fp8_ref(
        const uint8_t* A, const float* A_scale, const uint8_t* W1, const float* W1_scale, uint8_t* Hout, float* Hout_scale,
        const int* block_expert, const int* num_row_blocks, int max_row_blocks, int K, int N) {
    moe_ref::gemm1_swiglu_fp8(A, A_scale, W1, W1_scale, Hout, Hout_scale, block_expert, num_row_blocks, K, N);
}

extern "C" __global__ void MOE_REF_BOUNDS grouped_gemm2_fp8_ref(
        const uint8_t* A, const float* A_scale, const uint8_t* W2, const float* W2_scale, float* Y, const float* row_weight,
        const int* block_expert, const int* num_row_blocks, int max_row_blocks, int K, int N) {
    moe_ref::gemm2_fp8(A, A_scale, W2, W2_scale, Y, row_weight, block_expert, num_row_blocks, K, N);
}

// v0: the production entry points are the reference bodies (same launch shape). Replaced by the wgmma kernels.
extern "C" __global__ void MOE_REF_BOUNDS grouped_gemm1_swiglu_bf16(
        const __nv_bfloat16* A, const __nv_bfloat16* W1, __nv_bfloat16* Hout, const int* block_expert,
        const int* num_row_blocks, int max_row_blocks, int K, int N) {
    moe_ref::gemm1_swiglu_bf16((const uint8_t*)A, (const uint8_t*)W1, Hout, block_expert, num_row_blocks, K, N);
}

extern "C" __global__ void MOE_REF_BOUNDS grouped_gemm2_bf16(
        const __nv_bfloat16* A, const __nv_bfloat16* W2, float* Y, const float* row_weight, const int* block_expert,
        const int* num_row_blocks, int max_row_blocks, int K, int N) {
    moe_ref::gemm2_bf16((const uint8_t*)A, (const uint8_t*)W2, Y, row_weight, block_expert, num_row_blocks, K, N);
}

extern "C" __global__ void MOE_REF_BOUNDS grouped_gemm1_swiglu_fp8(
        const uint8_t* A, const float* A_scale, const uint8_t* W1, const float* W1_scale, uint8_t* Hout, float* Hout_scale,
        const int* block_expert, const int* num_row_blocks, int max_row_blocks, int K, int N) {
    moe_ref::gemm1_swiglu_fp8(A, A_scale, W1, W1_scale, Hout, Hout_scale, block_expert, num_row_blocks, K, N);
}

extern "C" __global__ void MOE_REF_BOUNDS grouped_gemm2_fp8(
        const uint8_t* A, const float* A_scale, const uint8_t* W2, const float* W2_scale, float* Y, const float* row_weight,
        const int* block_expert, const int* num_row_blocks, int max_row_blocks, int K, int N) {
    moe_ref::gemm2_fp8(A, A_scale, W2, W2_scale, Y, row_weight, block_expert, num_row_blocks, K, N);
}
