// Dispatch: tokens per expert, the m-grouped contiguous layout (every expert's rows padded to MOE_BLOCK_M, the
// expert of every row block and the number of blocks in use, all on the device), the scatter of token rows into it
// (BF16, or FP8 e4m3 with per-token per-128-channel scales) and the token -> slot map that combine reads.
//
// Slot order is deterministic: entries (token t, choice j), numbered t*k + j, are split into chunks (a launch
// parameter: the host picks it from the token capacity so a launch has at most 128 chunks); one warp per chunk counts
// (pass 1) and assigns (pass 3) in entry order, and pass 2 scans the per-chunk counts per expert. So expert e's rows
// hold its tokens in increasing (t, j) order, run to run and whatever the chunk size.
#include "moe_common.cuh"
// Activation rows and their FP8 scales are written in the GEMM's tile-packed layout (grouped_gemm.cuh).

#define DISPATCH_WARPS 4

// Entries a lane loads before it processes them (count and assign): one load latency per 8 x 32 entries instead of one
// per 32 (session 12: with 2048-entry chunks each pass was 64 dependent global-load round trips, ~20 us at 4096 tokens).
#define DISPATCH_PREFETCH 8

// Pass 1: chunk_counts[c][e] = entries of chunk c (entries [c * chunk, (c + 1) * chunk), chunk a multiple of 32) routed
// to expert e.
extern "C" __global__ void __launch_bounds__(DISPATCH_WARPS * 32) moe_dispatch_count(
    const int* __restrict__ topk_expert, int* __restrict__ chunk_counts, const int* __restrict__ num_tokens, int k, int E,
    int chunk) {
  extern __shared__ int hist_all[];  // [DISPATCH_WARPS][E]
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  int* hist = hist_all + warp * E;
  const int n = *num_tokens * k;
  const int c = blockIdx.x * DISPATCH_WARPS + warp;
  const int begin = c * chunk;
  if (begin >= n) return;
  for (int e = lane; e < E; e += 32) hist[e] = 0;
  __syncwarp();
  const int end = min(n, begin + chunk);
  for (int p0 = begin; p0 < end; p0 += 32 * DISPATCH_PREFETCH) {
    int ev[DISPATCH_PREFETCH];
#pragma unroll
    for (int m = 0; m < DISPATCH_PREFETCH; m++) {  // all loads first
      const int i = p0 + 32 * m + lane;
      ev[m] = i < end ? topk_expert[i] : -1 - lane;  // invalid lanes never match a real expert nor each other
    }
#pragma unroll
    for (int m = 0; m < DISPATCH_PREFETCH; m++) {
      if (p0 + 32 * m >= end) break;  // warp-uniform
      const int e = ev[m];
      unsigned peers = __match_any_sync(0xffffffffu, e);
      if (e >= 0 && (peers & ((1u << lane) - 1)) == 0) hist[e] += __popc(peers);  // lowest peer adds the group
      __syncwarp();
    }
  }
  __syncwarp();
  for (int e = lane; e < E; e += 32) chunk_counts[(size_t)c * E + e] = hist[e];
}

// Pass 2 (one block of >= E threads, a multiple of 32, <= 1024): chunk_base[c][e] = rows of expert e in chunks before c;
// expert_start[e] = first row of expert e (a multiple of MOE_BLOCK_M; experts without tokens get no rows);
// block_expert[b] = expert of row block b; *num_row_blocks = blocks in use.
extern "C" __global__ void __launch_bounds__(1024) moe_dispatch_scan(
    const int* __restrict__ chunk_counts, int* __restrict__ chunk_base, int* __restrict__ expert_count,
    int* __restrict__ expert_start, int* __restrict__ block_expert, int* __restrict__ num_row_blocks,
    const int* __restrict__ num_tokens, int k, int E, int max_row_blocks, int chunk) {
  __shared__ int warp_tot[32];
  const int e = threadIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  const int n = *num_tokens * k;
  const int chunks = (n + chunk - 1) / chunk;
  int running = 0;
  if (e < E) {
    int c = 0;
    for (; c + 8 <= chunks; c += 8) {  // eight independent loads in flight
      int a[8];
#pragma unroll
      for (int m = 0; m < 8; m++) a[m] = chunk_counts[(size_t)(c + m) * E + e];
#pragma unroll
      for (int m = 0; m < 8; m++) {
        chunk_base[(size_t)(c + m) * E + e] = running;
        running += a[m];
      }
    }
    for (; c < chunks; c++) {
      chunk_base[(size_t)c * E + e] = running;
      running += chunk_counts[(size_t)c * E + e];
    }
    expert_count[e] = running;
  }
  const int blocks = (running + MOE_BLOCK_M - 1) / MOE_BLOCK_M;
  // exclusive scan of blocks over the threads: inclusive within the warp, then over warp totals
  int incl = blocks;
  for (int o = 1; o < 32; o <<= 1) {
    int v = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += v;
  }
  if (lane == 31) warp_tot[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    int nw = (blockDim.x + 31) / 32;
    int v = lane < nw ? warp_tot[lane] : 0;
    int s = v;
    for (int o = 1; o < 32; o <<= 1) {
      int u = __shfl_up_sync(0xffffffffu, s, o);
      if (lane >= o) s += u;
    }
    if (lane < nw) warp_tot[lane] = s - v;  // exclusive prefix of warps
    if (lane == nw - 1) *num_row_blocks = s;
  }
  __syncthreads();
  const int first_block = warp_tot[warp] + incl - blocks;
  if (e < E) {
    expert_start[e] = first_block * MOE_BLOCK_M;
    for (int b = first_block; b < first_block + blocks && b < max_row_blocks; b++) block_expert[b] = e;
  }
}

// Pass 3: slot_of_entry[t*k+j] = the row of entry (t, j); row_weight[row] = its routing weight; kTokenOfSlot
// (moe_dispatch_assign_tokens, sparkmoe.gpu.gatherRows): token_of_slot[row] = t, the map GEMM1 gathers its rows by.
template <bool kTokenOfSlot>
__device__ __forceinline__ void dispatch_assign(
    const int* __restrict__ topk_expert, const float* __restrict__ topk_weight, const int* __restrict__ chunk_base,
    const int* __restrict__ expert_start, int* __restrict__ slot_of_entry, float* __restrict__ row_weight,
    const int* __restrict__ num_tokens, int k, int E, int chunk, int* __restrict__ token_of_slot) {
  extern __shared__ int next_all[];  // [DISPATCH_WARPS][E]
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  int* next = next_all + warp * E;
  const int n = *num_tokens * k;
  const int c = blockIdx.x * DISPATCH_WARPS + warp;
  const int begin = c * chunk;
  if (begin >= n) return;
  for (int e = lane; e < E; e += 32) next[e] = expert_start[e] + chunk_base[(size_t)c * E + e];
  __syncwarp();
  const int end = min(n, begin + chunk);
  for (int p0 = begin; p0 < end; p0 += 32 * DISPATCH_PREFETCH) {
    int ev[DISPATCH_PREFETCH];
    float wv[DISPATCH_PREFETCH];
#pragma unroll
    for (int m = 0; m < DISPATCH_PREFETCH; m++) {  // all loads first
      const int i = p0 + 32 * m + lane;
      const bool valid = i < end;
      ev[m] = valid ? topk_expert[i] : -1 - lane;  // invalid lanes never match a real expert nor each other
      wv[m] = valid ? topk_weight[i] : 0.0f;
    }
#pragma unroll
    for (int m = 0; m < DISPATCH_PREFETCH; m++) {
      if (p0 + 32 * m >= end) break;  // warp-uniform
      const int i = p0 + 32 * m + lane;
      const bool valid = i < end;
      const int e = ev[m];
      unsigned peers = __match_any_sync(0xffffffffu, e);
      int rank = __popc(peers & ((1u << lane) - 1));
      int base = valid ? next[e] : 0;
      __syncwarp();
      if (valid) {
        int row = base + rank;
        slot_of_entry[i] = row;
        row_weight[row] = wv[m];
        if constexpr (kTokenOfSlot) token_of_slot[row] = i / k;
        if (rank == 0) next[e] = base + __popc(peers);
      }
      __syncwarp();
    }
  }
}

extern "C" __global__ void __launch_bounds__(DISPATCH_WARPS * 32) moe_dispatch_assign(
    const int* __restrict__ topk_expert, const float* __restrict__ topk_weight, const int* __restrict__ chunk_base,
    const int* __restrict__ expert_start, int* __restrict__ slot_of_entry, float* __restrict__ row_weight,
    const int* __restrict__ num_tokens, int k, int E, int chunk) {
  dispatch_assign<false>(topk_expert, topk_weight, chunk_base, expert_start, slot_of_entry, row_weight, num_tokens, k, E, chunk,
                         nullptr);
}

extern "C" __global__ void __launch_bounds__(DISPATCH_WARPS * 32) moe_dispatch_assign_tokens(
    const int* __restrict__ topk_expert, const float* __restrict__ topk_weight, const int* __restrict__ chunk_base,
    const int* __restrict__ expert_start, int* __restrict__ slot_of_entry, float* __restrict__ row_weight,
    const int* __restrict__ num_tokens, int k, int E, int chunk, int* __restrict__ token_of_slot) {
  dispatch_assign<true>(topk_expert, topk_weight, chunk_base, expert_start, slot_of_entry, row_weight, num_tokens, k, E, chunk,
                        token_of_slot);
}

// The padding rows of every expert's last block (and, block E, the shared expert's rows from T to its padded end):
// zeroes their routing weights and (FP8, a_scale != null) activation scales; the rows themselves keep whatever they
// held (session 12: zeroing them, ~110 MB at 4096 DeepSeek-V3 tokens, took ~70 us before GEMM1). A GEMM computes a
// padding row only from that row, and nothing reads a padding row's outputs (combine reads the tokens' rows), as for the
// SwiGLU rows GEMM1 skips; with sparkmoe.gpu.gatherRows (GEMM1 zero-fills the padding rows it gathers) the engine
// passes no scales, so only the weights are zeroed. Block E also writes the shared expert's row-block count ceil(T / 128) (when
// shared_num_blocks != null). The engine launches the two parts separately (E = 0 and only block 0 for the shared part)
// because the shared expert's branch runs on its own stream, not after routing. H % 128 == 0.
extern "C" __global__ void moe_dispatch_pad(
    const int* __restrict__ expert_count, const int* __restrict__ expert_start, float* __restrict__ a_scale,
    float* __restrict__ row_weight, float* __restrict__ a_shared_scale, const int* __restrict__ num_tokens, int H, int E,
    int* __restrict__ shared_num_blocks) {
  int first, last;
  float* sc;
  if (blockIdx.x < E) {
    int cnt = expert_count[blockIdx.x];
    if (cnt == 0) return;
    first = expert_start[blockIdx.x] + cnt;
    last = expert_start[blockIdx.x] + (cnt + MOE_BLOCK_M - 1) / MOE_BLOCK_M * MOE_BLOCK_M;
    sc = a_scale;
  } else {
    int T = *num_tokens;
    first = T;
    last = (T + MOE_BLOCK_M - 1) / MOE_BLOCK_M * MOE_BLOCK_M;
    if (shared_num_blocks != nullptr && threadIdx.x == 0) *shared_num_blocks = last / MOE_BLOCK_M;
    sc = a_shared_scale;
  }
  const int kblocks = H / MOE_QUANT_BLOCK;
  for (int r = first + (int)threadIdx.x / 32; r < last; r += blockDim.x / 32) {
    const int lane = threadIdx.x & 31;
    if (lane == 0 && blockIdx.x < E) row_weight[r] = 0.0f;
    if (sc != nullptr)
      for (int kb = lane; kb < kblocks; kb += 32) sc[moe_act_scale_offset(r, kb, H)] = 0.0f;
  }
}

// The scatter kernels run one CTA per token (SCATTER_THREADS threads looping over the row): its k destination rows
// are loaded once (lane j holds slot j, broadcast by shuffles) instead of once per 128 or 1024 channels, and a CTA
// does a whole row's work, so a 16384-token launch is 16384 CTAs, not 16384 x H/512 tiny ones.
#define SCATTER_THREADS 256

// The session-3 scatter kernels ("blockwise", sparkmoe.gpu.scatterKernel=blockwise): a warp handles one piece of
// the row at a time (256 channels BF16, one 128-channel block FP8): one load in flight per warp, then the piece is
// written to each of the k rows, recomputing that row's swizzled offset (and FP8: one scale store per row by lane 0)
// for every piece.
// Scatter, BF16: each token's fp32 row, rounded to bf16 (nearest even), into its k rows and (when a_shared) row t of
// the shared expert's input. k = 0 writes only the shared expert's input (its branch, before routing is known).
// Grid (tokens capacity), SCATTER_THREADS threads x 8 channels per step.
extern "C" __global__ void __launch_bounds__(SCATTER_THREADS) moe_dispatch_rows_bf16_blockwise(
    const float* __restrict__ x, const int* __restrict__ slot_of_entry, __nv_bfloat16* __restrict__ a,
    __nv_bfloat16* __restrict__ a_shared, const int* __restrict__ num_tokens, int H, int k) {
  const int t = blockIdx.x;
  if (t >= *num_tokens) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const int my_slot = lane < k ? slot_of_entry[(size_t)t * k + lane] : 0;  // k <= 32
  // each warp takes 256 channels per step; lanes past H (H % 256 == 128) idle but stay for the shuffles
  for (int c0 = warp * 256; c0 < H; c0 += SCATTER_THREADS * 8) {
    const int c = c0 + lane * 8;
    const bool in_row = c < H;
    uint4 packed = make_uint4(0, 0, 0, 0);
    if (in_row) {
      const float4* src = (const float4*)(x + (size_t)t * H + c);
      float4 v0 = src[0], v1 = src[1];
      __nv_bfloat162 p0 = __floats2bfloat162_rn(v0.x, v0.y), p1 = __floats2bfloat162_rn(v0.z, v0.w);
      __nv_bfloat162 p2 = __floats2bfloat162_rn(v1.x, v1.y), p3 = __floats2bfloat162_rn(v1.z, v1.w);
      packed.x = *(unsigned*)&p0; packed.y = *(unsigned*)&p1; packed.z = *(unsigned*)&p2; packed.w = *(unsigned*)&p3;
    }
    for (int j = 0; j < k; j++) {
      int row = __shfl_sync(0xffffffffu, my_slot, j);
      if (in_row) *(uint4*)((unsigned char*)a + moe_act_offset(row, c, H, 2)) = packed;
    }
    if (a_shared && in_row) *(uint4*)((unsigned char*)a_shared + moe_act_offset(t, c, H, 2)) = packed;
  }
}

// Scatter, FP8: one warp per 128-channel block of the token (looping over the row): amax, scale, e4m3 values per the
// FP8 recipe, written to the token's k rows and its shared-expert row, with the scales in the GEMM's activation scale
// layout. k = 0 writes only the shared expert's row. Grid (tokens capacity), SCATTER_THREADS threads.
extern "C" __global__ void __launch_bounds__(SCATTER_THREADS) moe_dispatch_rows_fp8_blockwise(
    const float* __restrict__ x, const int* __restrict__ slot_of_entry, uint8_t* __restrict__ a,
    float* __restrict__ a_scale, uint8_t* __restrict__ a_shared, float* __restrict__ a_shared_scale,
    const int* __restrict__ num_tokens, int H, int k) {
  const int t = blockIdx.x;
  if (t >= *num_tokens) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const int my_slot = lane < k ? slot_of_entry[(size_t)t * k + lane] : 0;  // k <= 32
  for (int kb = warp; kb * MOE_QUANT_BLOCK < H; kb += SCATTER_THREADS / 32) {  // whole warps: shuffles stay full
    const int c = kb * MOE_QUANT_BLOCK + lane * 4;
    float4 v = *(const float4*)(x + (size_t)t * H + c);
    float amax = moe_warp_max(fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
    float scale = moe_fp8_scale(amax);
    float mult = moe_fp8_multiplier(amax);
    unsigned q = (unsigned)moe_to_e4m3(v.x * mult) | ((unsigned)moe_to_e4m3(v.y * mult) << 8)
               | ((unsigned)moe_to_e4m3(v.z * mult) << 16) | ((unsigned)moe_to_e4m3(v.w * mult) << 24);
    for (int j = 0; j < k; j++) {
      int row = __shfl_sync(0xffffffffu, my_slot, j);
      *(unsigned*)(a + moe_act_offset(row, c, H, 1)) = q;
      if (lane == 0) a_scale[moe_act_scale_offset(row, kb, H)] = scale;
    }
    if (a_shared) {
      *(unsigned*)(a_shared + moe_act_offset(t, c, H, 1)) = q;
      if (lane == 0) a_shared_scale[moe_act_scale_offset(t, kb, H)] = scale;
    }
  }
}

// ---------------- the prefetching scatter (default, sparkmoe.gpu.scatterKernel=prefetch) ----------------
// Same results bitwise as the blockwise kernels (same values, same layout). A CTA first loads its token's row (up to
// 8192 channels per pass: 8 float4 per thread in flight at once instead of one per warp), converts it, then writes it
// row by row: the destination row's base offset and swizzle are computed once per (row, pass) and each store adds a
// constant slab offset; FP8 scales are written by lane j for row j (one store per block for all k rows).
#define SCATTER_F4 8  // FP8: 128-channel blocks per warp per pass (one float4 per lane each)
#define SCATTER_U8 4  // BF16: 8-channel units per thread per pass (two float4 each)

extern "C" __global__ void __launch_bounds__(SCATTER_THREADS) moe_dispatch_rows_bf16(
    const float* __restrict__ x, const int* __restrict__ slot_of_entry, __nv_bfloat16* __restrict__ a,
    __nv_bfloat16* __restrict__ a_shared, const int* __restrict__ num_tokens, int H, int k) {
  const int t = blockIdx.x;
  if (t >= *num_tokens) return;
  const int lane = threadIdx.x & 31;
  const int my_row = lane < k ? slot_of_entry[(size_t)t * k + lane] : 0;  // k <= 32: lane j holds choice j's row
  const uint64_t row_bytes = 128ull * H * 2;                             // one 128-row block of the layout
  for (int c0 = 0; c0 < H; c0 += SCATTER_THREADS * 8 * SCATTER_U8) {
    uint4 packed[SCATTER_U8];
#pragma unroll
    for (int m = 0; m < SCATTER_U8; m++) {  // all loads first
      const int c = c0 + 8 * ((int)threadIdx.x + SCATTER_THREADS * m);
      float4 v0 = make_float4(0.f, 0.f, 0.f, 0.f), v1 = v0;
      if (c < H) {
        const float4* src = (const float4*)(x + (size_t)t * H + c);
        v0 = src[0];
        v1 = src[1];
      }
      __nv_bfloat162 p0 = __floats2bfloat162_rn(v0.x, v0.y), p1 = __floats2bfloat162_rn(v0.z, v0.w);
      __nv_bfloat162 p2 = __floats2bfloat162_rn(v1.x, v1.y), p3 = __floats2bfloat162_rn(v1.z, v1.w);
      packed[m] = make_uint4(*(unsigned*)&p0, *(unsigned*)&p1, *(unsigned*)&p2, *(unsigned*)&p3);
    }
    // element c of row r: (r / 128) * row_bytes + (c / 64) * 16384 + (r % 128) * 128 + (((c / 8) % 8) ^ (r % 8)) * 16
    auto store_row = [&](unsigned char* base, int r) {
      unsigned char* dst = base + (uint64_t)(r >> 7) * row_bytes + (r & 127) * 128;
      const int sw = r & 7;
#pragma unroll
      for (int m = 0; m < SCATTER_U8; m++) {
        const int c = c0 + 8 * ((int)threadIdx.x + SCATTER_THREADS * m);
        if (c < H) *(uint4*)(dst + (uint64_t)(c >> 6) * 16384 + ((((c >> 3) & 7) ^ sw) << 4)) = packed[m];
      }
    };
    for (int j = 0; j < k; j++) store_row((unsigned char*)a, __shfl_sync(0xffffffffu, my_row, j));
    if (a_shared) store_row((unsigned char*)a_shared, t);
  }
}

extern "C" __global__ void __launch_bounds__(SCATTER_THREADS) moe_dispatch_rows_fp8(
    const float* __restrict__ x, const int* __restrict__ slot_of_entry, uint8_t* __restrict__ a,
    float* __restrict__ a_scale, uint8_t* __restrict__ a_shared, float* __restrict__ a_shared_scale,
    const int* __restrict__ num_tokens, int H, int k) {
  const int t = blockIdx.x;
  if (t >= *num_tokens) return;
  constexpr int WARPS = SCATTER_THREADS / 32;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const int kblocks = H / MOE_QUANT_BLOCK;
  const int my_row = lane < k ? slot_of_entry[(size_t)t * k + lane] : 0;  // k <= 32: lane j holds choice j's row
  const uint64_t my_scale0 = moe_act_scale_offset((uint32_t)my_row, 0, (uint32_t)H);  // its scale of block 0
  const uint64_t row_bytes = 128ull * H;                                              // one 128-row block
  const int chunk = lane >> 2, byte_in_chunk = (lane & 3) * 4;  // the lane's 4 values: 16-byte chunk, byte in it
  for (int kb0 = 0; kb0 < kblocks; kb0 += SCATTER_F4 * WARPS) {
    // this warp's blocks of the pass: kb0 + warp + WARPS * m (warp-uniform validity: the shuffles stay full)
    float4 v[SCATTER_F4];
#pragma unroll
    for (int m = 0; m < SCATTER_F4; m++) {  // all loads first
      const int kb = kb0 + warp + WARPS * m;
      v[m] = kb < kblocks ? *(const float4*)(x + (size_t)t * H + kb * MOE_QUANT_BLOCK + lane * 4) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    unsigned q[SCATTER_F4];
    float scale[SCATTER_F4];
#pragma unroll
    for (int m = 0; m < SCATTER_F4; m++) {
      const float amax = moe_warp_max(fmaxf(fmaxf(fabsf(v[m].x), fabsf(v[m].y)), fmaxf(fabsf(v[m].z), fabsf(v[m].w))));
      scale[m] = moe_fp8_scale(amax);
      const float mult = moe_fp8_multiplier(amax);
      q[m] = (unsigned)moe_to_e4m3(v[m].x * mult) | ((unsigned)moe_to_e4m3(v[m].y * mult) << 8)
           | ((unsigned)moe_to_e4m3(v[m].z * mult) << 16) | ((unsigned)moe_to_e4m3(v[m].w * mult) << 24);
    }
#pragma unroll
    for (int m = 0; m < SCATTER_F4; m++) {
      const int kb = kb0 + warp + WARPS * m;
      if (kb < kblocks && lane < k) a_scale[my_scale0 + (uint64_t)kb * MOE_QUANT_BLOCK] = scale[m];
    }
    // element c (block kb = c / 128) of row r: (r / 128) * row_bytes + kb * 16384 + (r % 128) * 128
    //                                          + (((c % 128) / 16) ^ (r % 8)) * 16 + c % 16
    auto store_row = [&](uint8_t* base, int r) {
      uint8_t* dst = base + (uint64_t)(r >> 7) * row_bytes + (r & 127) * 128 + ((chunk ^ (r & 7)) << 4) + byte_in_chunk;
#pragma unroll
      for (int m = 0; m < SCATTER_F4; m++) {
        const int kb = kb0 + warp + WARPS * m;
        if (kb < kblocks) *(unsigned*)(dst + (uint64_t)kb * 16384) = q[m];
      }
    };
    for (int j = 0; j < k; j++) store_row(a, __shfl_sync(0xffffffffu, my_row, j));
    if (a_shared) {
      store_row(a_shared, t);
#pragma unroll
      for (int m = 0; m < SCATTER_F4; m++) {
        const int kb = kb0 + warp + WARPS * m;
        if (kb < kblocks && lane == 0) a_shared_scale[moe_act_scale_offset((uint32_t)t, (uint32_t)kb, (uint32_t)H)] = scale[m];
      }
    }
  }
}
