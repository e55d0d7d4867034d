// Tile helpers of the router logits kernels (moe_route.cu's fp64 ones, moe_route_certified.cu's BF16 one): 16-byte
// cp.async copies, the cp.async pipeline's prologue, the store of the warps' C fragments as logits or split-K partials.
#pragma once
#include "moe_common.cuh"

// 16 bytes from global to shared memory, asynchronously; zero-filled when !valid.
__device__ __forceinline__ void rtc_cp_async16(void* smem, const void* gmem, bool valid) {
  unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  int n = valid ? 16 : 0;  // 0 source bytes: the 16 bytes are zero-filled
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(s), "l"(gmem), "r"(n) : "memory");
}

// The prologue of the cp.async pipeline of tc and tc2 over nk K tiles in STAGES shared-memory stages: issues tiles
// 0..STAGES-2 (load_tile(kt, stage) issues the copies of tile kt), one commit group per tile - empty past nk, so that
// step kt's wait for all but the newest STAGES-2 groups always means tile kt landed.
template <int STAGES, typename LoadTile>
__device__ __forceinline__ void rt_pipeline_start(int nk, const LoadTile& load_tile) {
#pragma unroll
  for (int st = 0; st < STAGES - 1; st++) {
    if (st < nk) load_tile(st, st);
    asm volatile("cp.async.commit_group;" ::: "memory");
  }
}

// Writes a warp's C fragments for tokens t0 + wm + .. and experts e0 + wn + ..: MI row tiles of HALVES x 8 rows by 4
// column tiles of 8, as the MMAs lay them out (m8n8k4 f64, HALVES 1: c0, c1 at (row g, cols 2q, 2q+1); m16n8k8 f64 and
// m16n8k16, HALVES 2: also c2, c3 at (row g+8, same cols)), rounded once to fp32 logits, or (split K) as fp64 partial
// sums of split blockIdx.z. kList: tile rows are positions in list[] (the token of row p is list[p], partial sums stay
// by position), and direct says whether this launch writes logits (else partial sums).
template <int MI, int HALVES = 2, bool kList = false>
__device__ __forceinline__ void rt_store_c(const double (&acc)[MI][4][2 * HALVES], float* __restrict__ logits,
                                           double* __restrict__ partial, int T, int n_out, int t0, int wm, int e0, int wn,
                                           int g, int q, const int* __restrict__ list = nullptr, bool direct = false) {
#pragma unroll
  for (int i = 0; i < MI; i++) {
#pragma unroll
    for (int h = 0; h < HALVES; h++) {
      int t = t0 + wm + i * 8 * HALVES + g + 8 * h;
      if (t >= T) continue;
      const int row = kList ? list[t] : t;
#pragma unroll
      for (int j = 0; j < 4; j++) {
#pragma unroll
        for (int c = 0; c < 2; c++) {
          int e = e0 + wn + j * 8 + q * 2 + c;
          if (e >= n_out) continue;
          double v = acc[i][j][2 * h + c];
          if (kList ? direct : gridDim.z == 1) logits[(size_t)row * n_out + e] = (float)v;
          else partial[((size_t)blockIdx.z * T + t) * n_out + e] = v;
        }
      }
    }
  }
}
