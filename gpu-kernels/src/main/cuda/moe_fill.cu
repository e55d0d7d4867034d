// Device-side generation of synthetic weights and inputs (benchmarks of real shapes: a DeepSeek-V3 layer is ~11 GB of
// FP8 weights, generated where it is used instead of carried). Counter-based hashing: the same seed gives the same
// values on any launch shape.
#include "moe_common.cuh"

__device__ __forceinline__ uint64_t moe_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// An approximately standard normal value for index i (sum of four uniforms, rescaled: cheap and bounded).
__device__ __forceinline__ float moe_hash_normal(uint64_t seed, uint64_t i) {
  uint64_t a = moe_mix64(seed * 0x9e3779b97f4a7c15ull + i), b = moe_mix64(a);
  float s = (float)(a & 0xffffffffu) + (float)(a >> 32) + (float)(b & 0xffffffffu) + (float)(b >> 32);
  return (s * (1.0f / 4294967296.0f) - 2.0f) * 1.7320508f;  // variance of a sum of 4 U(0,1) is 1/3
}

extern "C" __global__ void moe_fill_normal_f32(float* __restrict__ p, long long n, unsigned long long seed, float stddev) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    p[i] = moe_hash_normal(seed, (uint64_t)i) * stddev;
}

// fp32 values that bf16 holds exactly (N(0, 1) * stddev rounded to bf16): routers as checkpoints store them.
extern "C" __global__ void moe_fill_normal_f32_bf16_exact(float* __restrict__ p, long long n, unsigned long long seed, float stddev) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    p[i] = __bfloat162float(__float2bfloat16_rn(moe_hash_normal(seed, (uint64_t)i) * stddev));
}

extern "C" __global__ void moe_fill_normal_bf16(__nv_bfloat16* __restrict__ p, long long n, unsigned long long seed, float stddev) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    p[i] = __float2bfloat16_rn(moe_hash_normal(seed, (uint64_t)i) * stddev);
}

// e4m3 codes of N(0, 1) * 64 (so the block scales that give a weight of a given std are std / 64).
extern "C" __global__ void moe_fill_normal_e4m3(uint8_t* __restrict__ p, long long n, unsigned long long seed) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    p[i] = moe_to_e4m3(moe_hash_normal(seed, (uint64_t)i) * 64.0f);
}

extern "C" __global__ void moe_fill_f32(float* __restrict__ p, long long n, float value) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) p[i] = value;
}
