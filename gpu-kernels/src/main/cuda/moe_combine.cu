// Combine: out[t] = (sum over the token's k rows of Y, in selection order) + the shared expert's row, in fp32 with a
// fixed order - bitwise identical run to run (no atomics). Y rows already carry their routing weight (GEMM2's epilogue),
// the shared rows their gate. Grid (H / 512 rounded up, tokens capacity), 128 threads x 4 channels. Token t's row j is
// y[slot_of_entry[t * k + j]], or y[t * k + j] without slot_of_entry (the small-batch path's Y, rows by entry).
#include "moe_common.cuh"

extern "C" __global__ void __launch_bounds__(128) moe_combine(
    const float* __restrict__ y, const float* __restrict__ y_shared, const int* __restrict__ slot_of_entry,
    float* __restrict__ out, const int* __restrict__ num_tokens, int H, int k) {
  const int t = blockIdx.y;
  if (t >= *num_tokens) return;
  const int c = (blockIdx.x * 128 + threadIdx.x) * 4;
  if (c >= H) return;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int j = 0; j < k; j++) {
    const int row = slot_of_entry ? slot_of_entry[(size_t)t * k + j] : t * k + j;
    float4 v = *(const float4*)(y + (size_t)row * H + c);
    acc.x += v.x; acc.y += v.y; acc.z += v.z; acc.w += v.w;
  }
  if (y_shared) {
    float4 v = *(const float4*)(y_shared + (size_t)t * H + c);
    acc.x += v.x; acc.y += v.y; acc.z += v.z; acc.w += v.w;
  }
  *(float4*)(out + (size_t)t * H + c) = acc;
}

// Adds the 8 bf16 values packed in v to acc[0..8) (each widened to fp32 exactly, one fp32 addition per value).
__device__ __forceinline__ void moe_add_bf16x8(float (&acc)[8], uint4 v) {
  const unsigned w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    acc[2 * i] += __uint_as_float(w[i] << 16);              // low half: the lower channel
    acc[2 * i + 1] += __uint_as_float(w[i] & 0xffff0000u);
  }
}

// Combine with bf16 expert outputs (sparkmoe.gpu.expertOutputPrecision=bf16: GEMM2 stored Y and Y shared as bf16):
// the same sum, in the same order, in fp32 - bitwise repeatable. Grid (H / 1024 rounded up, tokens capacity), 128
// threads x 8 channels (one 16-byte load per row).
extern "C" __global__ void __launch_bounds__(128) moe_combine_bf16(
    const __nv_bfloat16* __restrict__ y, const __nv_bfloat16* __restrict__ y_shared, const int* __restrict__ slot_of_entry,
    float* __restrict__ out, const int* __restrict__ num_tokens, int H, int k) {
  const int t = blockIdx.y;
  if (t >= *num_tokens) return;
  const int c = (blockIdx.x * 128 + threadIdx.x) * 8;
  if (c >= H) return;
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
#pragma unroll 4
  for (int j = 0; j < k; j++) {
    int row = slot_of_entry[(size_t)t * k + j];
    moe_add_bf16x8(acc, *(const uint4*)(y + (size_t)row * H + c));
  }
  if (y_shared) moe_add_bf16x8(acc, *(const uint4*)(y_shared + (size_t)t * H + c));
  float4* o = (float4*)(out + (size_t)t * H + c);
  o[0] = make_float4(acc[0], acc[1], acc[2], acc[3]);
  o[1] = make_float4(acc[4], acc[5], acc[6], acc[7]);
}

// Residual of a layer stack: dst = a + b elementwise in fp32 (dst may alias a or b), n a multiple of 4. The host
// stack computes out[k] += x[k], one fp32 addition per element, so the device result is bitwise the same.
extern "C" __global__ void __launch_bounds__(256) moe_add_f32(const float* a, const float* b, float* dst, long long n) {
  long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 4;
  if (i >= n) return;
  float4 u = *(const float4*)(a + i), v = *(const float4*)(b + i);
  *(float4*)(dst + i) = make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
}

// fp32 -> bf16 (nearest even), n a multiple of 4 (utility for tests and weight conversion on the device).
extern "C" __global__ void moe_f32_to_bf16(const float* __restrict__ src, __nv_bfloat16* __restrict__ dst, long long n) {
  long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 4;
  if (i >= n) return;
  float4 v = *(const float4*)(src + i);
  __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
  *(__nv_bfloat162*)(dst + i) = a;
  *(__nv_bfloat162*)(dst + i + 2) = b;
}
