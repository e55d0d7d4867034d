// Route: router logits (fp64 accumulation, rounded to fp32 once, as the CPU reference computes them) and the top-k
// selection of every routing function (softmax, softmax renormalized, DeepSeek-V3 grouped sigmoid with selection bias)
// with the CPU engine's tie rule: equal keys go to the lower index. Reads the token count from device memory, so the
// same launch serves any count up to the capacity it was sized for (CUDA graphs per token bucket).
#include "moe_common.cuh"
#include "moe_route_tiles.cuh"

#define ROUTER_TILE 64
#define ROUTER_KT 16

// logits[t, e] = sum_h x[t, h] * w[e, h] for t < *num_tokens, e < n_out (router rows, plus Qwen2-MoE's shared gate row).
// 64x64 output tile per CTA, 256 threads, 4x4 outputs each, fp64 accumulators.
extern "C" __global__ void __launch_bounds__(256) moe_router_logits(
    const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ logits,
    const int* __restrict__ num_tokens, int H, int n_out) {
  const int T = *num_tokens;
  const int t0 = blockIdx.y * ROUTER_TILE, e0 = blockIdx.x * ROUTER_TILE;
  if (t0 >= T) return;
  __shared__ double xs[ROUTER_KT][ROUTER_TILE + 1];
  __shared__ double ws[ROUTER_KT][ROUTER_TILE + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  double acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j] = 0.0;
  for (int k0 = 0; k0 < H; k0 += ROUTER_KT) {
    // load 64 rows x 16 k of x and of w: 1024 values each, 4 per thread
    for (int i = threadIdx.x; i < ROUTER_TILE * ROUTER_KT; i += 256) {
      int r = i / ROUTER_KT, kk = i % ROUTER_KT;
      int t = t0 + r, e = e0 + r, k = k0 + kk;
      xs[kk][r] = (t < T && k < H) ? (double)x[(size_t)t * H + k] : 0.0;
      ws[kk][r] = (e < n_out && k < H) ? (double)w[(size_t)e * H + k] : 0.0;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < ROUTER_KT; kk++) {
      double a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = xs[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; j++) b[j] = ws[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fma(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int t = t0 + ty + 16 * i;
    if (t >= T) continue;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int e = e0 + tx + 16 * j;
      if (e < n_out) logits[(size_t)t * n_out + e] = (float)acc[i][j];
    }
  }
}

// The same logits on the fp64 tensor cores (DMMA, mma.sync m8n8k4 f64): 64x64 tile per CTA, 4 warps of 32x32. The
// fp32 tiles (64 rows x 32 of K, x and w) stream into shared memory through a 3-stage cp.async pipeline and are widened
// to fp64 as the fragments are loaded. Every product and sum is fp64, so the fp32 result equals the CPU's (a float64
// dot product rounded once) except when the exact sum lies within ~1e-16 of a rounding boundary.
// Split K (gridDim.z > 1, for few tokens: more CTAs): CTA z sums K range [z*k_per_split, ...) and writes its fp64
// partial sums to partial[z][t][e]; moe_router_logits_reduce adds them in z order and rounds once.
#define RTC_TILE 64
#define RTC_KT 32
#define RTC_ROW 36      // floats per staged row: == 4 (mod 32) keeps the fragment loads free of bank conflicts
#define RTC_STAGES 3
#define RTC_STAGE_FLOATS (2 * RTC_TILE * RTC_ROW)
#define RTC_SMEM_BYTES (RTC_STAGES * RTC_STAGE_FLOATS * 4)

extern "C" __global__ void __launch_bounds__(128) moe_router_logits_tc(
    const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ logits, double* __restrict__ partial,
    const int* __restrict__ num_tokens, int H, int n_out, int k_per_split) {
  const int T = *num_tokens;
  const int t0 = blockIdx.y * RTC_TILE, e0 = blockIdx.x * RTC_TILE;
  if (t0 >= T) return;
  const int k_begin = blockIdx.z * k_per_split, k_end = min(H, k_begin + k_per_split);
  const int nk = (k_end - k_begin) / RTC_KT;  // H and k_per_split are multiples of 32
  extern __shared__ float rtc_smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  const int g = lane >> 2, q = lane & 3;

  auto load_tile = [&](int kt, int stage) {
    float* xs = rtc_smem + stage * RTC_STAGE_FLOATS;
    float* ws = xs + RTC_TILE * RTC_ROW;
    const int k0 = k_begin + kt * RTC_KT;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      int idx = threadIdx.x + i * 128, r = idx >> 3, c = (idx & 7) * 4;
      int t = t0 + r, e = e0 + r;
      rtc_cp_async16(xs + r * RTC_ROW + c, x + (size_t)min(t, T - 1) * H + k0 + c, t < T);
      rtc_cp_async16(ws + r * RTC_ROW + c, w + (size_t)min(e, n_out - 1) * H + k0 + c, e < n_out);
    }
  };

  double acc[4][4][2];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j][0] = acc[i][j][1] = 0.0;

  rt_pipeline_start<RTC_STAGES>(nk, load_tile);
  for (int kt = 0; kt < nk; kt++) {
    asm volatile("cp.async.wait_group %0;" :: "n"(RTC_STAGES - 2) : "memory");
    __syncthreads();  // tile kt landed for every thread; everyone is done with tile kt-1's stage
    if (kt + RTC_STAGES - 1 < nk) load_tile(kt + RTC_STAGES - 1, (kt + RTC_STAGES - 1) % RTC_STAGES);
    asm volatile("cp.async.commit_group;" ::: "memory");
    const float* xs = rtc_smem + (kt % RTC_STAGES) * RTC_STAGE_FLOATS;
    const float* ws = xs + RTC_TILE * RTC_ROW;
#pragma unroll
    for (int kk = 0; kk < RTC_KT; kk += 4) {
      double a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = (double)xs[(wm + i * 8 + g) * RTC_ROW + kk + q];
#pragma unroll
      for (int j = 0; j < 4; j++) b[j] = (double)ws[(wn + j * 8 + g) * RTC_ROW + kk + q];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
          asm volatile("mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 {%0,%1}, {%2}, {%3}, {%0,%1};"
                       : "+d"(acc[i][j][0]), "+d"(acc[i][j][1]) : "d"(a[i]), "d"(b[j]));
    }
  }
  asm volatile("cp.async.wait_group 0;" ::: "memory");
  rt_store_c<4, 1>(acc, logits, partial, T, n_out, t0, wm, e0, wn, g, q);
}

// Version 2 of the DMMA logits (routerKernel "tc2"): the same tiles, warps and split K as moe_router_logits_tc, but
// (1) the Hopper DMMA shape m16n8k8 (sm_90; 4x the work per instruction of the Ampere-era m8n8k4, which tc uses and
// which reached only ~1/3 of the fp64 tensor peak), and (2) no fp32 -> fp64 conversion in the inner loop: the router
// weights come in fp64 (converted once at load, moe_f32_to_f64) and stream into shared memory as fp64; each x tile is
// widened once per CTA (fp32 staged by cp.async -> one fp64 copy) instead of once per warp that reads it. Every
// product and sum is still fp64 (only the order of additions inside the tensor core differs from tc), so the logits
// equal the CPU's float64 dot products rounded once, as tc's do.
// One k8 step of the m16n8k8 fp64 DMMAs of a warp's MI x 4 tiles (tc2, tc3): acc[i][j] += A[i] x B[j], fragments as
// the PTX ISA lays them out (A a0 (g, q), a1 (g+8, q), a2 (g, q+4), a3 (g+8, q+4); B b0 (k q, n g), b1 (q+4, g)).
template <int MI>
__device__ __forceinline__ void rt_dmma_k8(double (&acc)[MI][4][4], const double (&a)[MI][4], const double (&b)[4][2]) {
#pragma unroll
  for (int i = 0; i < MI; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
      asm volatile("mma.sync.aligned.m16n8k8.row.col.f64.f64.f64.f64 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                   : "+d"(acc[i][j][0]), "+d"(acc[i][j][1]), "+d"(acc[i][j][2]), "+d"(acc[i][j][3])
                   : "d"(a[i][0]), "d"(a[i][1]), "d"(a[i][2]), "d"(a[i][3]), "d"(b[j][0]), "d"(b[j][1]));
}

#define RT2_ROW 36  // doubles (and floats) per staged row: 36 == 4 (mod 16) keeps the 64-bit fragment loads conflict-free
#define RT2_TILE_ELEMS (RTC_TILE * RT2_ROW)
#define RT2_SMEM_BYTES (RTC_STAGES * RT2_TILE_ELEMS * 8 + RT2_TILE_ELEMS * 8 + RTC_STAGES * RT2_TILE_ELEMS * 4)

// The tc2 kernel body, with STAGES cp.async stages and (kSwizzleWiden) the x widening stores free of shared-memory
// bank conflicts (session 4, glue5: ncu on the H200 showed tc2's widening stores at 11.5 wavefronts per request, ideal
// 4, and the DP tensor pipe only 65 % busy with 2 warps per scheduler). Same products and sums, bitwise the same logits.
// kList (moe_router_logits_tc2w_list, the certified router's fallback): the tile's rows are the tokens list[0, *count)
// instead of 0..T-1; logits rows are those tokens' rows, split-K partial sums are by list position. The list's length
// is known only on the device, so the launch's gridDim.z splits are cut to what partial_cap doubles hold
// (rt_list_k_per_split; the splits past it exit, one split writes the logits directly).
// K per split of a list launch of max_splits splits over T listed tokens: as few splits as fit partial_cap doubles
// (T x n_out per split), each a multiple of 32 of K.
__device__ __forceinline__ int rt_list_k_per_split(int T, int n_out, int H, int max_splits, long long partial_cap) {
  const long long fit = partial_cap / ((long long)max(T, 1) * n_out);
  const int splits = (int)max(1LL, min((long long)max_splits, fit));
  return ((H + splits - 1) / splits + 31) / 32 * 32;
}

template <int STAGES, bool kSwizzleWiden, bool kList = false>
__device__ __forceinline__ void rt2_logits(
    const float* __restrict__ x, const double* __restrict__ w, float* __restrict__ logits, double* __restrict__ partial,
    const int* __restrict__ num_tokens, int H, int n_out, int k_per_split, const int* __restrict__ list = nullptr,
    long long partial_cap = 0) {
  const int T = *num_tokens;
  const int t0 = blockIdx.y * RTC_TILE, e0 = blockIdx.x * RTC_TILE;
  if (t0 >= T) return;
  bool direct = gridDim.z == 1;
  if constexpr (kList) {
    k_per_split = rt_list_k_per_split(T, n_out, H, gridDim.z, partial_cap);
    if ((int)blockIdx.z * k_per_split >= H) return;
    direct = k_per_split >= H;
  }
  const int k_begin = blockIdx.z * k_per_split, k_end = min(H, k_begin + k_per_split);
  const int nk = (k_end - k_begin) / RTC_KT;  // H and k_per_split are multiples of 32
  extern __shared__ double rt2_smem[];
  double* ws_all = rt2_smem;                              // [stages][64][RT2_ROW] fp64 router rows
  double* xd = ws_all + STAGES * RT2_TILE_ELEMS;          // [64][RT2_ROW] fp64 x rows of the current step
  float* xs_all = (float*)(xd + RT2_TILE_ELEMS);          // [stages][64][RT2_ROW] fp32 x rows as loaded
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  const int g = lane >> 2, q = lane & 3;

  auto load_tile = [&](int kt, int stage) {
    float* xs = xs_all + stage * RT2_TILE_ELEMS;
    double* ws = ws_all + stage * RT2_TILE_ELEMS;
    const int k0 = k_begin + kt * RTC_KT;
#pragma unroll
    for (int i = 0; i < 4; i++) {  // x: 64 rows x 8 chunks of 4 floats
      int idx = threadIdx.x + i * 128, r = idx >> 3, c = (idx & 7) * 4;
      int t = t0 + r;
      int row = min(t, T - 1);
      if constexpr (kList) row = list[row];
      rtc_cp_async16(xs + r * RT2_ROW + c, x + (size_t)row * H + k0 + c, t < T);
    }
#pragma unroll
    for (int i = 0; i < 8; i++) {  // w: 64 rows x 16 chunks of 2 doubles
      int idx = threadIdx.x + i * 128, r = idx >> 4, c = (idx & 15) * 2;
      int e = e0 + r;
      rtc_cp_async16((float*)(ws + r * RT2_ROW + c), (const float*)(w + (size_t)min(e, n_out - 1) * H + k0 + c), e < n_out);
    }
  };

  double acc[2][4][4];  // [m16 tile][n8 tile][c0..c3]
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0;

  rt_pipeline_start<STAGES>(nk, load_tile);
  for (int kt = 0; kt < nk; kt++) {
    asm volatile("cp.async.wait_group %0;" :: "n"(STAGES - 2) : "memory");
    __syncthreads();  // tile kt landed for every thread; everyone is done with step kt-1 (its stage and xd)
    if (kt + STAGES - 1 < nk) load_tile(kt + STAGES - 1, (kt + STAGES - 1) % STAGES);
    asm volatile("cp.async.commit_group;" ::: "memory");
    const float* xs = xs_all + (kt % STAGES) * RT2_TILE_ELEMS;
#pragma unroll
    for (int i = 0; i < 4; i++) {  // widen the x tile once (exact)
      int idx = threadIdx.x + i * 128, r = idx >> 3, c = (idx & 7) * 4;
      float4 v = *(const float4*)(xs + r * RT2_ROW + c);
      const double2 lo = make_double2((double)v.x, (double)v.y), hi = make_double2((double)v.z, (double)v.w);
      if (kSwizzleWiden && (idx & 4)) {
        // a row is 288 bytes (== 32 mod 128): chunks 4..7 of a row land on the 16-byte bank groups of chunks 0..3, so
        // they store their upper half first - each 8-thread phase of a 128-bit store then covers all 32 banks once
        *(double2*)(xd + r * RT2_ROW + c + 2) = hi;
        *(double2*)(xd + r * RT2_ROW + c) = lo;
      } else {
        *(double2*)(xd + r * RT2_ROW + c) = lo;
        *(double2*)(xd + r * RT2_ROW + c + 2) = hi;
      }
    }
    __syncthreads();
    const double* ws = ws_all + (kt % STAGES) * RT2_TILE_ELEMS;
#pragma unroll
    for (int kk = 0; kk < RTC_KT; kk += 8) {
      // m16n8k8 f64 fragments (PTX ISA): A a0 (g, q), a1 (g+8, q), a2 (g, q+4), a3 (g+8, q+4); B b0 (k q, n g), b1 (q+4, g)
      double a[2][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 2; i++) {
        const double* r0 = xd + (wm + i * 16 + g) * RT2_ROW + kk + q;
        const double* r1 = r0 + 8 * RT2_ROW;
        a[i][0] = r0[0]; a[i][1] = r1[0]; a[i][2] = r0[4]; a[i][3] = r1[4];
      }
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const double* r = ws + (wn + j * 8 + g) * RT2_ROW + kk + q;
        b[j][0] = r[0]; b[j][1] = r[4];
      }
      rt_dmma_k8<2>(acc, a, b);
    }
  }
  asm volatile("cp.async.wait_group 0;" ::: "memory");
  if constexpr (kList) {
    rt_store_c<2, 2, true>(acc, logits, partial, T, n_out, t0, wm, e0, wn, g, q, list, direct);
  } else {
    rt_store_c<2>(acc, logits, partial, T, n_out, t0, wm, e0, wn, g, q);
  }
}

// tc2w over a token list (the certified router's fallback for the tokens its certificate could not clear): list[0,
// *list_count) are token indices; the logits rows of those tokens get tc2w's fp64 sums (bitwise the same values).
extern "C" __global__ void __launch_bounds__(128) moe_router_logits_tc2w_list(
    const float* __restrict__ x, const double* __restrict__ w, float* __restrict__ logits, double* __restrict__ partial,
    const int* __restrict__ list, const int* __restrict__ list_count, int H, int n_out, int k_per_split,
    long long partial_cap) {
  rt2_logits<RTC_STAGES, true, true>(x, w, logits, partial, list_count, H, n_out, k_per_split, list, partial_cap);
}

// The split-K reduction of moe_router_logits_tc2w_list (same max_splits and partial_cap): logits[list[p]][e] =
// (float)(sum over z of partial[z][p][e]); nothing when the launch ran unsplit.
extern "C" __global__ void moe_router_logits_reduce_list(const double* __restrict__ partial, float* __restrict__ logits,
                                                         const int* __restrict__ list, const int* __restrict__ list_count,
                                                         int n_out, int H, int max_splits, long long partial_cap) {
  const int T = *list_count;
  const int kps = rt_list_k_per_split(T, n_out, H, max_splits, partial_cap);
  const int splits = (H + kps - 1) / kps;
  if (splits <= 1) return;
  const size_t n = (size_t)T * n_out;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    double s = 0.0;
    for (int z = 0; z < splits; z++) s += partial[(size_t)z * n + i];
    logits[(size_t)list[i / n_out] * n_out + i % n_out] = (float)s;
  }
}

extern "C" __global__ void __launch_bounds__(128) moe_router_logits_tc2(
    const float* __restrict__ x, const double* __restrict__ w, float* __restrict__ logits, double* __restrict__ partial,
    const int* __restrict__ num_tokens, int H, int n_out, int k_per_split) {
  rt2_logits<RTC_STAGES, false>(x, w, logits, partial, num_tokens, H, n_out, k_per_split);
}

// tc2w: tc2 with the conflict-free widening stores.
extern "C" __global__ void __launch_bounds__(128) moe_router_logits_tc2w(
    const float* __restrict__ x, const double* __restrict__ w, float* __restrict__ logits, double* __restrict__ partial,
    const int* __restrict__ num_tokens, int H, int n_out, int k_per_split) {
  rt2_logits<RTC_STAGES, true>(x, w, logits, partial, num_tokens, H, n_out, k_per_split);
}

// tc2o: tc2w with 2 stages (72 KB of shared memory) and at most 168 registers, so 3 CTAs (12 warps) share an SM
// instead of 2 (8): more warps to hide the fragment-load and DMMA latencies that left the DP tensor pipe idle.
extern "C" __global__ void __launch_bounds__(128, 3) moe_router_logits_tc2o(
    const float* __restrict__ x, const double* __restrict__ w, float* __restrict__ logits, double* __restrict__ partial,
    const int* __restrict__ num_tokens, int H, int n_out, int k_per_split) {
  rt2_logits<2, true>(x, w, logits, partial, num_tokens, H, n_out, k_per_split);
}

// Version 3 of the DMMA logits (routerKernel "tc3"). tc2 reached ~31-35 TFLOPS fp64, half the H200's DMMA peak: its
// 64x64 tile moves 64 x (4 + 8) bytes of x and w per K for 64 x 64 FMAs (5.3 FMA per byte: at the L2 -> SM rate of
// ~24 B/clk/SM that is exactly the 128 FMA/clk/SM the DMMAs need), and its 32x32 warp tiles read 512 B of fragments
// per DMMA from shared memory (with the cp.async and widening traffic ~85 % of the shared-memory bandwidth). tc3:
// - 128 x 128 tile per CTA (10.7 FMA per byte of L2 traffic), 8 warps of 64 (tokens) x 32 (outputs), one CTA per SM;
// - A fragments as one 128-bit load per 2 values: the widened fp64 x tile stores each k8 block as the pairs
//   (k, k+4), which is how the m16n8k8 A fragment takes them (a0/a2, a1/a3); 384 B of fragments per DMMA;
// - XOR-swizzled rows instead of padding (196 KB of shared memory: 3 stages of fp64 w, 2 of fp32 x, 2 widened x);
// - one barrier per K step: tile kt+1 is widened while tile kt is multiplied; tile kt+2 is in flight meanwhile;
// - split K only to fill the GPU once (4096 DeepSeek tokens: 64 tiles x 2 splits), partials reduced as for tc/tc2.
// Router weights: the same fp64 copy tc2 reads. Every product and sum is fp64, rounded once to fp32 (as tc/tc2/simt).
#define RT3_TM 128
#define RT3_TN 128
#define RT3_KT 32
#define RT3_XS_ROW 36                                    // floats per staged fp32 x row (conflict-free widening reads)
#define RT3_W_TILE (RT3_TN * RT3_KT)                     // doubles per w stage
#define RT3_XD_TILE (RT3_TM * RT3_KT)                    // doubles per widened x tile
#define RT3_XS_TILE (RT3_TM * RT3_XS_ROW)                // floats per fp32 x stage
#define RT3_SMEM_BYTES (3 * RT3_W_TILE * 8 + 2 * RT3_XD_TILE * 8 + 2 * RT3_XS_TILE * 4)

// w rows: 16 chunks of 2 doubles (consecutive k); chunk c of row r sits at c ^ ((r & 3) << 1), so the 64-bit B
// fragment loads (rows g = 0..3 of a half-warp, k = q or q + 4) hit 32 distinct banks.
__device__ __forceinline__ int rt3_w_off(int r, int c) { return r * RT3_KT + ((c ^ ((r & 3) << 1)) << 1); }
// widened x rows: chunk kb * 4 + q holds (x[k8 block kb][q], x[kb][q + 4]); chunk c of row r sits at c ^ ((r & 1) << 2),
// so the 128-bit A fragment loads (rows g, g + 1 and q = 0..3 per 8-lane phase) are conflict-free.
__device__ __forceinline__ int rt3_x_off(int r, int c) { return r * RT3_KT + ((c ^ ((r & 1) << 2)) << 1); }

// K16 = false: m16n8k8 DMMAs (routerKernel tc3); true: m16n8k16 (tc3k16), the shape CUTLASS's SM90 DGEMM uses: half the
// instructions and accumulator traffic per FMA, same tiles, shared memory and fp64 sums.
template <bool K16>
__device__ __forceinline__ void rt3_logits(
    const float* __restrict__ x, const double* __restrict__ w, float* __restrict__ logits, double* __restrict__ partial,
    const int* __restrict__ num_tokens, int H, int n_out, int k_per_split) {
  const int T = *num_tokens;
  const int t0 = blockIdx.y * RT3_TM, e0 = blockIdx.x * RT3_TN;
  if (t0 >= T) return;
  const int k_begin = blockIdx.z * k_per_split, k_end = min(H, k_begin + k_per_split);
  const int nk = (k_end - k_begin) / RT3_KT;  // H and k_per_split are multiples of 32
  extern __shared__ __align__(16) double rt3_smem[];
  double* ws_all = rt3_smem;                         // [3][128 rows][32] fp64 router rows, swizzled
  double* xd_all = ws_all + 3 * RT3_W_TILE;          // [2][128 rows][32] fp64 x rows, k8-paired and swizzled
  float* xs_all = (float*)(xd_all + 2 * RT3_XD_TILE);  // [2][128 rows][36] fp32 x rows as loaded
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
  const int g = lane >> 2, q = lane & 3;

  auto load_tile = [&](int kt, int xstage, int wstage) {
    float* xs = xs_all + xstage * RT3_XS_TILE;
    double* ws = ws_all + wstage * RT3_W_TILE;
    const int k0 = k_begin + kt * RT3_KT;
#pragma unroll
    for (int i = 0; i < 4; i++) {  // x: 128 rows x 8 chunks of 4 floats
      int idx = tid + i * 256, r = idx >> 3, c = (idx & 7) * 4;
      int t = t0 + r;
      rtc_cp_async16(xs + r * RT3_XS_ROW + c, x + (size_t)min(t, T - 1) * H + k0 + c, t < T);
    }
#pragma unroll
    for (int i = 0; i < 8; i++) {  // w: 128 rows x 16 chunks of 2 doubles
      int idx = tid + i * 256, r = idx >> 4, c = idx & 15;
      int e = e0 + r;
      rtc_cp_async16((float*)(ws + rt3_w_off(r, c)), (const float*)(w + (size_t)min(e, n_out - 1) * H + k0 + 2 * c), e < n_out);
    }
  };
  // thread (row r, q) widens x[r][kb * 8 + q] and x[r][kb * 8 + q + 4] for kb = 0..3 (exact) into chunk kb * 4 + q
  auto widen = [&](int xstage, int dstage) {
    const float* xs = xs_all + xstage * RT3_XS_TILE;
    double* xd = xd_all + dstage * RT3_XD_TILE;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      int u = tid + i * 256, r = u >> 2, qq = u & 3;
      const float* src = xs + r * RT3_XS_ROW + qq;
#pragma unroll
      for (int kb = 0; kb < 4; kb++)
        *(double2*)(xd + rt3_x_off(r, kb * 4 + qq)) = make_double2((double)src[kb * 8], (double)src[kb * 8 + 4]);
    }
  };

  double acc[4][4][4];  // [m16 tile][n8 tile][c0..c3]
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0;

  if (nk > 0) load_tile(0, 0, 0);
  asm volatile("cp.async.commit_group;" ::: "memory");
  if (nk > 1) load_tile(1, 1, 1);
  asm volatile("cp.async.commit_group;" ::: "memory");
  asm volatile("cp.async.wait_group 1;" ::: "memory");
  __syncthreads();
  if (nk > 0) widen(0, 0);
  for (int kt = 0; kt < nk; kt++) {
    asm volatile("cp.async.wait_group 0;" ::: "memory");  // tile kt+1 landed (this thread's copies)
    __syncthreads();  // ... for every thread; x tile kt widened; everyone is done with step kt-1's buffers
    if (kt + 2 < nk) load_tile(kt + 2, kt & 1, (kt + 2) % 3);
    asm volatile("cp.async.commit_group;" ::: "memory");
    if (kt + 1 < nk) widen((kt + 1) & 1, (kt + 1) & 1);
    const double* xd = xd_all + (kt & 1) * RT3_XD_TILE;
    const double* ws = ws_all + (kt % 3) * RT3_W_TILE;
    if constexpr (K16) {
#pragma unroll 1  // unrolled, ptxas hoists the second step's fragments and spills
      for (int kb = 0; kb < RT3_KT / 16; kb++) {
        // m16n8k16 f64 fragments (PTX ISA; CUTLASS's SM90_16x8x16_F64F64F64F64_TN atom): A a[2v + h] = (g + 8h, q + 4v),
        // v = 0..3; B b[v] = (k q + 4v, n g). The widened x tile's k8 block 2kb holds the pair (q, q+4), 2kb+1 (q+8, q+12).
        double b[4][4];
#pragma unroll
        for (int j = 0; j < 4; j++) {
          int r = wn + j * 8 + g;
#pragma unroll
          for (int v = 0; v < 4; v++) {
            int k = kb * 16 + q + 4 * v;
            b[j][v] = ws[rt3_w_off(r, k >> 1) + (k & 1)];
          }
        }
#pragma unroll
        for (int i = 0; i < 4; i++) {
          int r = wm + i * 16 + g;
          double2 p0 = *(const double2*)(xd + rt3_x_off(r, 2 * kb * 4 + q));
          double2 p1 = *(const double2*)(xd + rt3_x_off(r + 8, 2 * kb * 4 + q));
          double2 p2 = *(const double2*)(xd + rt3_x_off(r, (2 * kb + 1) * 4 + q));
          double2 p3 = *(const double2*)(xd + rt3_x_off(r + 8, (2 * kb + 1) * 4 + q));
#pragma unroll
          for (int j = 0; j < 4; j++)
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f64.f64.f64.f64 {%0,%1,%2,%3}, {%4,%5,%6,%7,%8,%9,%10,%11}, "
                         "{%12,%13,%14,%15}, {%0,%1,%2,%3};"
                         : "+d"(acc[i][j][0]), "+d"(acc[i][j][1]), "+d"(acc[i][j][2]), "+d"(acc[i][j][3])
                         : "d"(p0.x), "d"(p1.x), "d"(p0.y), "d"(p1.y), "d"(p2.x), "d"(p3.x), "d"(p2.y), "d"(p3.y),
                           "d"(b[j][0]), "d"(b[j][1]), "d"(b[j][2]), "d"(b[j][3]));
        }
      }
    } else {
#pragma unroll
    for (int kb = 0; kb < RT3_KT / 8; kb++) {
      // m16n8k8 f64 fragments (PTX ISA): A a0 (g, q), a1 (g+8, q), a2 (g, q+4), a3 (g+8, q+4); B b0 (k q, n g), b1 (q+4, g)
      double a[4][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 4; i++) {
        int r = wm + i * 16 + g;
        double2 lo = *(const double2*)(xd + rt3_x_off(r, kb * 4 + q));
        double2 hi = *(const double2*)(xd + rt3_x_off(r + 8, kb * 4 + q));
        a[i][0] = lo.x; a[i][2] = lo.y; a[i][1] = hi.x; a[i][3] = hi.y;
      }
#pragma unroll
      for (int j = 0; j < 4; j++) {
        int r = wn + j * 8 + g, k = kb * 8 + q;  // chunk k / 2, element k & 1; k + 4 is two chunks on
        b[j][0] = ws[rt3_w_off(r, k >> 1) + (k & 1)];
        b[j][1] = ws[rt3_w_off(r, (k >> 1) + 2) + (k & 1)];
      }
      rt_dmma_k8<4>(acc, a, b);
    }
    }
  }
  asm volatile("cp.async.wait_group 0;" ::: "memory");
  rt_store_c<4>(acc, logits, partial, T, n_out, t0, wm, e0, wn, g, q);
}

extern "C" __global__ void __launch_bounds__(256, 1) moe_router_logits_tc3(
    const float* __restrict__ x, const double* __restrict__ w, float* __restrict__ logits, double* __restrict__ partial,
    const int* __restrict__ num_tokens, int H, int n_out, int k_per_split) {
  rt3_logits<false>(x, w, logits, partial, num_tokens, H, n_out, k_per_split);
}

extern "C" __global__ void __launch_bounds__(256, 1) moe_router_logits_tc3k16(
    const float* __restrict__ x, const double* __restrict__ w, float* __restrict__ logits, double* __restrict__ partial,
    const int* __restrict__ num_tokens, int H, int n_out, int k_per_split) {
  rt3_logits<true>(x, w, logits, partial, num_tokens, H, n_out, k_per_split);
}

// dst[i] = (double)src[i] (exact): the router weights for moe_router_logits_tc2 and tc3, once at load.
extern "C" __global__ void moe_f32_to_f64(const float* __restrict__ src, double* __restrict__ dst, long long n) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    dst[i] = (double)src[i];
}

// logits[t][e] = (float)(sum over z in order of partial[z][t][e]).
extern "C" __global__ void moe_router_logits_reduce(const double* __restrict__ partial, float* __restrict__ logits,
                                                    const int* __restrict__ num_tokens, int n_out, int splits) {
  const int T = *num_tokens;
  const size_t n = (size_t)T * n_out;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    double s = 0.0;
    for (int z = 0; z < splits; z++) s += partial[(size_t)z * n + i];
    logits[i] = (float)s;
  }
}

#include "moe_topk.cuh"

#define ROUTE_WARPS 4

// One warp per token. Writes topk_expert/topk_weight [T, k] in selection order (best first), and when given (both
// nullable) the shared expert's row weight (1, or sigmoid(shared gate logit) when gated) and, from thread 0 of block 0,
// the shared expert's row-block count ceil(T / 128). The engine passes neither (the shared branch of the layer sets
// its block count itself; ungated weights are constant 1) except the gate weights of Qwen2-MoE.
// scoring: 0 softmax, 1 sigmoid. n_out = logits row stride (E, or E + 1 when the last column is the shared gate).
extern "C" __global__ void __launch_bounds__(ROUTE_WARPS * 32) moe_route_topk(
    const float* __restrict__ logits, const float* __restrict__ bias, int* __restrict__ topk_expert,
    float* __restrict__ topk_weight, float* __restrict__ shared_row_weight, int* __restrict__ shared_num_blocks,
    const int* __restrict__ num_tokens, int E, int n_out, int k, int scoring, int n_group, int topk_group,
    int norm_topk, float scaling, int shared_gated) {
  const int T = *num_tokens;
  if (shared_num_blocks && blockIdx.x == 0 && threadIdx.x == 0) *shared_num_blocks = (T + MOE_BLOCK_M - 1) / MOE_BLOCK_M;
  const int warp = threadIdx.x / 32;
  const int t = blockIdx.x * ROUTE_WARPS + warp;
  if (t >= T) return;
  extern __shared__ float route_smem[];
  __shared__ int chosen[ROUTE_WARPS][32];
  const MoeTopkScratch sc = moe_topk_scratch<ROUTE_WARPS>(route_smem, warp, E);
  moe_topk_token(logits + (size_t)t * n_out, bias, t, topk_expert, topk_weight, shared_row_weight, E, k, scoring, n_group,
                 topk_group, norm_topk, scaling, shared_gated, sc.key, sc.score, sc.okw, chosen[warp]);
}

// moe_route_topk for the tokens list[0, *list_count) only (the certified router's fallback, after their fp64 logits).
extern "C" __global__ void __launch_bounds__(ROUTE_WARPS * 32) moe_route_topk_list(
    const float* __restrict__ logits, const float* __restrict__ bias, int* __restrict__ topk_expert,
    float* __restrict__ topk_weight, float* __restrict__ shared_row_weight, const int* __restrict__ list,
    const int* __restrict__ list_count, int E, int n_out, int k, int scoring, int n_group, int topk_group, int norm_topk,
    float scaling, int shared_gated) {
  const int warp = threadIdx.x / 32;
  const int p = blockIdx.x * ROUTE_WARPS + warp;
  if (p >= *list_count) return;
  const int t = list[p];
  extern __shared__ float route_smem[];
  __shared__ int chosen[ROUTE_WARPS][32];
  const MoeTopkScratch sc = moe_topk_scratch<ROUTE_WARPS>(route_smem, warp, E);
  moe_topk_token(logits + (size_t)t * n_out, bias, t, topk_expert, topk_weight, shared_row_weight, E, k, scoring, n_group,
                 topk_group, norm_topk, scaling, shared_gated, sc.key, sc.score, sc.okw, chosen[warp]);
}
