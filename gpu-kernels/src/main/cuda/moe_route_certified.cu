// The certified router (routerKernel "cert", and "certwg" for its warpgroup-MMA logits kernel further down): router
// logits on the BF16 tensor cores, a per-token certificate that the CPU engine's choice of experts cannot differ from
// the one made on them, and the fp64 path (moe_route.cu's tc2w) for the tokens it cannot clear. It needs router weights
// that are exact in bf16 (checkpoints store them so).
//
// Logits. x (fp32) is split exactly into three bf16 terms, x = hi + mid + lo (round-to-nearest leaves at most 16, then
// 8 significant bits), so every product with a bf16 router weight is exact in fp32. Each mma.sync m16n8k16 adds 16
// exact products into an fp32 accumulator; hi's accumulators are promoted into fp64 every RF_HI_PROMOTE_TILES K tiles
// (a chain of 4 MMAs), (mid + lo)'s every RF_ML_PROMOTE_TILES (32 MMAs of 2^-8 smaller terms), so the only error is
// the tensor core's fp32 accumulation inside a chain. The bound assumes each MMA's sum of 17 addends (16 products and
// the accumulator) loses less than one fp32 ulp of the largest addend per addend (alignment with truncation in a
// >= 24-bit window, as Fasi, Higham, Mikaitis and Pranesh measured on V100, T4 and A100: products exact, addends aligned
// to the largest and truncated, no guard digits; assumed on H100, where the GPU tests measure its margin) plus the
// final rounding, i.e. at most 18 * 2^-23 * (|c| + sum |p|); hi's chains then err by at
// most 72 * 2^-23 * S_hi in all, (mid + lo)'s by 576 * 2^-31 * S, S = sum |x_i w_i| <= ||x|| ||w|| (Cauchy-Schwarz),
// S_hi <= (1 + 2^-8) S. The host passes bound_scale = 76 * 2^-23 (> (72.3 + 2.25) * 2^-23).
//
// Certificate (moe_route_topk_certified): with every logit l in [l~ - d, l~ + d] (d = bound + one ulp for the fp32
// rounding of the fast logit, and the CPU's logit is that exact sum rounded to fp32, so it lies in the interval too), the
// keys (logit, or fp32 sigmoid + bias: non-decreasing in l) lie in [key(l~ - d), key(l~ + d)] (widened by one ulp) and
// DeepSeek's group scores (best + second key, non-decreasing in each) in the intervals of those. The token is certified
// when the chosen groups' lowest score beats every other group's highest and the chosen experts' lowest key beats every
// other eligible expert's highest - then the CPU's choice (with any tie rule) is the same set. Uncertified tokens (near
// ties, non-finite logits or bounds) go to list[] and are routed again from fp64 logits (moe_router_logits_tc2w_list,
// moe_route_topk_list). The routing weights of certified tokens come from the fast logits (~1e-7 relative).
#include "moe_common.cuh"
#include "moe_route_tiles.cuh"
#include "moe_topk.cuh"
#include "grouped_gemm_sm90.cuh"
#include "grouped_gemm_wgmma.cuh"

#define RF_TILE 64
#define RF_KT 32
#define RF_XROW 40   // floats per staged x row: the float2 fragment loads (rows g, cols 2q) of a half warp hit 32 banks
#define RF_WROW 40   // bf16 per staged router row (80 bytes): the 32-bit B fragment loads hit 32 distinct banks
#define RF_STAGES 3
#define RF_X_STAGE (RF_TILE * RF_XROW)
#define RF_W_STAGE (RF_TILE * RF_WROW)
#define RF_SMEM_BYTES (RF_STAGES * (RF_X_STAGE * 4 + RF_W_STAGE * 2))
#define RF_HI_PROMOTE_TILES 2  // K tiles of 32 per hi fp32 chain: 4 MMAs
#define RF_ML_PROMOTE_TILES 8  // K tiles of 32 per (mid + lo) fp32 chain: 32 MMAs of 2^-8 smaller terms
#define RF_ROUTE_WARPS 4       // tokens (warps) per block of moe_route_topk_certified (MoeRoute.ROUTE_WARPS)

__device__ __forceinline__ unsigned rf_bf162_bits(__nv_bfloat162 v) { return *(unsigned*)&v; }

// Exact split of two fp32 values into bf16 pairs hi + mid + lo (packed as the MMA's 32-bit A registers).
__device__ __forceinline__ void rf_split(float2 v, unsigned& hi, unsigned& mid, unsigned& lo) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(v.x, v.y);
  const float2 hf = __bfloat1622float2(h);
  const float rx = v.x - hf.x, ry = v.y - hf.y;  // exact
  const __nv_bfloat162 m = __floats2bfloat162_rn(rx, ry);
  const float2 mf = __bfloat1622float2(m);
  const __nv_bfloat162 l = __floats2bfloat162_rn(rx - mf.x, ry - mf.y);  // exact: at most 8 significant bits are left
  hi = rf_bf162_bits(h); mid = rf_bf162_bits(m); lo = rf_bf162_bits(l);
}

__device__ __forceinline__ void rf_mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// logits[t, e] ~ x[t] . w[e] (t < *num_tokens, e < n_out) as above; 64x64 tiles of 4 warps (32x32 each), split K over
// gridDim.z (partial[z][t][e] in fp64, moe_router_logits_reduce adds them in order). Each warp splits its A fragments
// in registers (measured, session 12: 387 us at 4096 DeepSeek-V3 tokens; splitting each x tile once per CTA into bf16
// planes read by ldmatrix took 599 us - the extra barrier-bound pass and the planes' stores cost more than the halved
// split work). Blocks with blockIdx.x == 0 also write x_sq[z][t] = the sum over their K range of x[t, k]^2 (for the
// certificate's ||x||). Block (0, 0, 0) zeroes *fallback_count (read by the certificate kernel, which runs after it).
extern "C" __global__ void __launch_bounds__(128, 3) moe_router_logits_bf16x3(
    const float* __restrict__ x, const __nv_bfloat16* __restrict__ w, float* __restrict__ logits,
    double* __restrict__ partial, float* __restrict__ x_sq, int* __restrict__ fallback_count,
    const int* __restrict__ num_tokens, int H, int n_out, int k_per_split) {
  const int T = *num_tokens;
  if (blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0 && threadIdx.x == 0) *fallback_count = 0;
  const int t0 = blockIdx.y * RF_TILE, e0 = blockIdx.x * RF_TILE;
  if (t0 >= T) return;
  const int k_begin = blockIdx.z * k_per_split, k_end = min(H, k_begin + k_per_split);
  const int nk = (k_end - k_begin) / RF_KT;  // H and k_per_split are multiples of 32
  extern __shared__ __align__(16) unsigned char rf_smem[];
  float* xs_all = (float*)rf_smem;                                          // [stages][64][RF_XROW]
  __nv_bfloat16* ws_all = (__nv_bfloat16*)(xs_all + RF_STAGES * RF_X_STAGE);  // [stages][64][RF_WROW]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  const int g = lane >> 2, q = lane & 3;

  auto load_tile = [&](int kt, int stage) {
    float* xs = xs_all + stage * RF_X_STAGE;
    __nv_bfloat16* ws = ws_all + stage * RF_W_STAGE;
    const int k0 = k_begin + kt * RF_KT;
#pragma unroll
    for (int i = 0; i < 4; i++) {  // x: 64 rows x 8 chunks of 4 floats
      const int idx = tid + i * 128, r = idx >> 3, c = (idx & 7) * 4;
      const int t = t0 + r;
      rtc_cp_async16(xs + r * RF_XROW + c, x + (size_t)min(t, T - 1) * H + k0 + c, t < T);
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {  // w: 64 rows x 4 chunks of 8 bf16
      const int idx = tid + i * 128, r = idx >> 2, c = (idx & 3) * 8;
      const int e = e0 + r;
      rtc_cp_async16(ws + r * RF_WROW + c, w + (size_t)min(e, n_out - 1) * H + k0 + c, e < n_out);
    }
  };

  float acc_hi[2][4][4], acc_ml[2][4][4];
  double acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int c = 0; c < 4; c++) { acc_hi[i][j][c] = 0.f; acc_ml[i][j][c] = 0.f; acc[i][j][c] = 0.0; }
  float sq = 0.f;  // blockIdx.x == 0: thread (row tid / 2, half tid % 2) sums its squares

  rt_pipeline_start<RF_STAGES>(nk, load_tile);
  for (int kt = 0; kt < nk; kt++) {
    asm volatile("cp.async.wait_group %0;" :: "n"(RF_STAGES - 2) : "memory");
    __syncthreads();  // tile kt landed for every thread; everyone is done with tile kt-1's stage
    if (kt + RF_STAGES - 1 < nk) load_tile(kt + RF_STAGES - 1, (kt + RF_STAGES - 1) % RF_STAGES);
    asm volatile("cp.async.commit_group;" ::: "memory");
    const float* xs = xs_all + (kt % RF_STAGES) * RF_X_STAGE;
    const __nv_bfloat16* ws = ws_all + (kt % RF_STAGES) * RF_W_STAGE;
    if (blockIdx.x == 0) {
      const float* xr = xs + (tid >> 1) * RF_XROW + (tid & 1) * 16;
#pragma unroll
      for (int c = 0; c < 16; c++) sq = fmaf(xr[c], xr[c], sq);
    }
#pragma unroll
    for (int kk = 0; kk < RF_KT; kk += 16) {
      // A (m16 x k16, row): a0 (g, 2q..2q+1), a1 (g+8, 2q..), a2 (g, 2q+8..), a3 (g+8, 2q+8..); B (k16 x n8, col):
      // b0 (k 2q..2q+1, n g), b1 (k 2q+8.., n g); C: c0, c1 (g, 2q..2q+1), c2, c3 (g+8, ..)
      unsigned b[4][2];
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const __nv_bfloat16* r = ws + (wn + j * 8 + g) * RF_WROW + kk + 2 * q;
        b[j][0] = *(const unsigned*)r;
        b[j][1] = *(const unsigned*)(r + 8);
      }
#pragma unroll
      for (int i = 0; i < 2; i++) {
        const float* r0 = xs + (wm + i * 16 + g) * RF_XROW + kk + 2 * q;
        const float* r1 = r0 + 8 * RF_XROW;
        unsigned ah[4], am[4], al[4];
        rf_split(*(const float2*)r0, ah[0], am[0], al[0]);
        rf_split(*(const float2*)r1, ah[1], am[1], al[1]);
        rf_split(*(const float2*)(r0 + 8), ah[2], am[2], al[2]);
        rf_split(*(const float2*)(r1 + 8), ah[3], am[3], al[3]);
#pragma unroll
        for (int j = 0; j < 4; j++) {
          rf_mma(acc_hi[i][j], ah, b[j][0], b[j][1]);
          rf_mma(acc_ml[i][j], am, b[j][0], b[j][1]);
          rf_mma(acc_ml[i][j], al, b[j][0], b[j][1]);
        }
      }
    }
    const bool last = kt + 1 == nk;
    if ((kt + 1) % RF_HI_PROMOTE_TILES == 0 || last) {
      const bool promote_ml = (kt + 1) % RF_ML_PROMOTE_TILES == 0 || last;
#pragma unroll
      for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
          for (int c = 0; c < 4; c++) {
            acc[i][j][c] += (double)acc_hi[i][j][c];
            acc_hi[i][j][c] = 0.f;
            if (promote_ml) {
              acc[i][j][c] += (double)acc_ml[i][j][c];
              acc_ml[i][j][c] = 0.f;
            }
          }
    }
  }
  asm volatile("cp.async.wait_group 0;" ::: "memory");
  if (blockIdx.x == 0) {
    sq += __shfl_xor_sync(0xffffffffu, sq, 1);
    const int t = t0 + (tid >> 1);
    if ((tid & 1) == 0 && t < T) x_sq[(size_t)blockIdx.z * T + t] = sq;
  }
  rt_store_c<2>(acc, logits, partial, T, n_out, t0, wm, e0, wn, g, q);
}

// ---- The wgmma form (routerKernel "certwg"): the same sums as moe_router_logits_bf16x3 on warpgroup MMAs ----
// CTA = 64 tokens x 128 experts, three warpgroups: a producer that copies each 64-wide K stage of x (fp32) and of the
// router (bf16) with cp.async, splits x once per CTA into its hi / mid / lo bf16 planes (the SW128 K-major layout the
// MMA reads) and sums x's squares; two consumers of 64 experts each that run wgmma m64n64k16 with A = a plane and B =
// the router tile from shared memory. Chains and promotions are moe_router_logits_bf16x3's - hi's fp32 accumulator
// promoted into fp64 every 4 MMAs (one stage), (mid + lo)'s every 32 (four stages) - so the certificate's bound holds
// unchanged. Each consumer awaits its stage's MMAs before promoting (ptxas serializes the MMAs of a form that reads
// one accumulator while the next stage's MMAs are in flight; making the two consumers take turns, so that one promotes
// while the other multiplies, measured no faster - session 13, call g).
// Needs H and k_per_split multiples of 64.
#define RW_TOKENS 64
#define RW_EXPERTS 128
#define RW_KS 64                 // K per stage: one 128-byte row of bf16
#define RW_STAGES 4
#define RW_LOOKAHEAD 3           // stages in flight in the producer's cp.async groups
#define RW_ML_STAGES 4           // (mid + lo) chain: 4 stages x 4 k16 steps x 2 MMAs = 32 MMAs (RF_ML_PROMOTE_TILES x 4)
#define RW_THREADS 384
#define RW_PLANE_BYTES (RW_TOKENS * 128)
#define RW_W_OFF (3 * RW_PLANE_BYTES)
#define RW_X_OFF (RW_W_OFF + RW_EXPERTS * 128)
#define RW_STAGE_BYTES (RW_X_OFF + RW_TOKENS * RW_KS * 4)  // 56 KB
#define RW_SMEM_BYTES (RW_STAGES * RW_STAGE_BYTES + 1024 + 64)  // + 1024-byte alignment slack + the mbarriers

extern "C" __global__ void __launch_bounds__(RW_THREADS, 1) moe_router_logits_bf16x3_wg(
    const float* __restrict__ x, const __nv_bfloat16* __restrict__ w, float* __restrict__ logits,
    double* __restrict__ partial, float* __restrict__ x_sq, int* __restrict__ fallback_count,
    const int* __restrict__ num_tokens, int H, int n_out, int k_per_split) {
  const int T = *num_tokens;
  if (blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0 && threadIdx.x == 0) *fallback_count = 0;
  const int t0 = blockIdx.y * RW_TOKENS, e0 = blockIdx.x * RW_EXPERTS;
  if (t0 >= T) return;
  const int tid = threadIdx.x;
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const int k_begin = blockIdx.z * k_per_split, k_end = min(H, k_begin + k_per_split);
  const int nk = (k_end - k_begin) / RW_KS;
  const int wg = tid >> 7;
  const int consumers = n_out - e0 > 64 ? 2 : 1;  // a consumer with no expert of its 64 sits out
  extern __shared__ __align__(16) unsigned char rw_raw[];
  const uint32_t raw = sm90::smem_addr(rw_raw), base = (raw + 1023u) & ~1023u;
  unsigned char* const gbase = rw_raw + (base - raw);
  const uint32_t bars = base + RW_STAGES * RW_STAGE_BYTES;
  auto full = [&](int s) { return bars + 8u * s; };
  auto empty = [&](int s) { return bars + 8u * (RW_STAGES + s); };
  if (tid == 0) {
    for (int s = 0; s < RW_STAGES; s++) {
      sm90::mbar_init(full(s), 128);
      sm90::mbar_init(empty(s), 4 * consumers);
    }
  }
  __syncthreads();
  if (wg == 0) {
    // Producer. Thread (row r, half h) copies and splits x's chunks h, h + 2, .., h + 14 (4 floats each) of row r - its
    // own copies, so its cp.async wait alone makes them visible to it - staged at chunk c ^ 2 (r & 3) of the row's 16
    // (the float4 reads of 8 lanes hit distinct banks), and 8 of the router tile's 1024 16-byte chunks.
    const int r = tid >> 1, h = tid & 1;
    const bool row_ok = t0 + r < T;
    const float* xrow = x + (size_t)min(t0 + r, T - 1) * H;
    float sq = 0.f;
    auto issue = [&](int j) {
      const int s = j % RW_STAGES;
      if (j >= RW_STAGES) sm90::mbar_wait(empty(s), ((j / RW_STAGES) - 1) & 1);
      const uint32_t st = base + s * RW_STAGE_BYTES;
      const int k0 = k_begin + j * RW_KS;
#pragma unroll
      for (int i = 0; i < 8; i++) {
        const int c = h + 2 * i;
        sm90::cp_async16(st + RW_X_OFF + r * 256 + ((c ^ ((r & 3) << 1)) << 4), xrow + k0 + 4 * c, row_ok ? 16 : 0);
      }
#pragma unroll
      for (int i = 0; i < 8; i++) {
        const int idx = i * 128 + tid, row = idx >> 3, c = idx & 7, e = e0 + row;
        sm90::cp_async16(st + RW_W_OFF + row * 128 + ((c ^ (row & 7)) << 4), w + (size_t)min(e, n_out - 1) * H + k0 + 8 * c,
                         e < n_out ? 16 : 0);
      }
    };
#pragma unroll 1
    for (int j = 0; j < RW_LOOKAHEAD; j++) {
      if (j < nk) issue(j);
      asm volatile("cp.async.commit_group;" ::: "memory");
    }
#pragma unroll 1
    for (int ks = 0; ks < nk; ks++) {
      asm volatile("cp.async.wait_group %0;" :: "n"(RW_LOOKAHEAD - 1) : "memory");  // this thread's copies of stage ks
      const int s = ks % RW_STAGES;
      const float* xs = (const float*)(gbase + s * RW_STAGE_BYTES + RW_X_OFF) + r * RW_KS;
      unsigned char* const planes = gbase + s * RW_STAGE_BYTES;
      // All eight chunks loaded first and the planes stored with plain stores, so that the loads, the splits' dependent
      // chains and the stores of different chunks overlap (one producer warp per scheduler hides no latency otherwise).
      float4 v[8];
#pragma unroll
      for (int i = 0; i < 8; i++) v[i] = *(const float4*)(xs + 4 * ((h + 2 * i) ^ ((r & 3) << 1)));
#pragma unroll
      for (int i = 0; i < 8; i++) {
        sq = fmaf(v[i].x, v[i].x, sq); sq = fmaf(v[i].y, v[i].y, sq); sq = fmaf(v[i].z, v[i].z, sq); sq = fmaf(v[i].w, v[i].w, sq);
        uint2 hi, mid, lo;
        rf_split(make_float2(v[i].x, v[i].y), hi.x, mid.x, lo.x);
        rf_split(make_float2(v[i].z, v[i].w), hi.y, mid.y, lo.y);
        // bf16 k = 4c .. 4c + 3 (c = h + 2i) of row r: bytes 8c.. of its 128, i.e. half h of 16-byte chunk i, swizzled
        // with r & 7
        const uint32_t off = r * 128 + ((i ^ (r & 7)) << 4) + (h << 3);
        *(uint2*)(planes + off) = hi;
        *(uint2*)(planes + off + RW_PLANE_BYTES) = mid;
        *(uint2*)(planes + off + 2 * RW_PLANE_BYTES) = lo;
      }
      sm90::fence_proxy_async_smem();  // the planes' stores and this thread's landed copies, before the MMAs read them
      sm90::mbar_arrive(full(s));
      if (ks + RW_LOOKAHEAD < nk) issue(ks + RW_LOOKAHEAD);
      asm volatile("cp.async.commit_group;" ::: "memory");
    }
    asm volatile("cp.async.wait_group 0;" ::: "memory");
    if (blockIdx.x == 0) {
      sq += __shfl_xor_sync(0xffffffffu, sq, 1);
      if (h == 0 && row_ok) x_sq[(size_t)blockIdx.z * T + t0 + r] = sq;
    }
    return;
  }
  const int cw = wg - 1;
  if (cw >= consumers) return;
  // Consumer cw: experts e0 + 64 cw .. + 63. Accumulator layout of m64nNk16 (per warp 16 rows, as mma m16n8):
  // d[4j + c] (c < 2) at (row g, col 8j + 2q + c), d[4j + 2 + c] at (row g + 8, same col).
  const int lane = tid & 31, wrow = ((tid & 127) >> 5) * 16, g = lane >> 2, q = lane & 3;
  float acc_hi[32], acc_ml[32];
  double acc[32];
#pragma unroll
  for (int c = 0; c < 32; c++) { acc_hi[c] = 0.f; acc_ml[c] = 0.f; acc[c] = 0.0; }
#pragma unroll 1
  for (int ks = 0; ks < nk; ks++) {
    const int s = ks % RW_STAGES;
    sm90::mbar_wait(full(s), (ks / RW_STAGES) & 1);
    const uint32_t st = base + s * RW_STAGE_BYTES;
    const uint32_t d_hi = (st >> 4) & 0x3FFFu, d_b = ((st + RW_W_OFF + cw * 64 * 128) >> 4) & 0x3FFFu;
    const uint32_t plane = RW_PLANE_BYTES >> 4;
    const uint32_t ml_on = ks % RW_ML_STAGES != 0;  // 0: this stage starts a new (mid + lo) chain
#pragma unroll
    for (int c = 0; c < 32; c++) { sm90::fence_operand(acc_hi[c]); sm90::fence_operand(acc_ml[c]); }
    sm90::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {  // k16 steps: 32 bytes = 2 descriptor units along the swizzled row
      const uint64_t b = sm90::sw128_desc_lo(d_b + 2 * kk);
      wgmma_m64n64k16_bf16(acc_hi, sm90::sw128_desc_lo(d_hi + 2 * kk), b, kk > 0);
      wgmma_m64n64k16_bf16(acc_ml, sm90::sw128_desc_lo(d_hi + plane + 2 * kk), b, kk > 0 || ml_on);
      wgmma_m64n64k16_bf16(acc_ml, sm90::sw128_desc_lo(d_hi + 2 * plane + 2 * kk), b, 1);
    }
    sm90::wgmma_commit();
    sm90::wgmma_wait<0>();
#pragma unroll
    for (int c = 0; c < 32; c++) { sm90::fence_operand(acc_hi[c]); sm90::fence_operand(acc_ml[c]); }
    __syncwarp();
    if (lane == 0) sm90::mbar_arrive(empty(s));
    const bool promote_ml = (ks + 1) % RW_ML_STAGES == 0 || ks + 1 == nk;
#pragma unroll
    for (int c = 0; c < 32; c++) {
      acc[c] += (double)acc_hi[c];
      if (promote_ml) acc[c] += (double)acc_ml[c];
    }
  }
#pragma unroll
  for (int hh = 0; hh < 2; hh++) {
    const int t = t0 + wrow + g + 8 * hh;
    if (t >= T) continue;
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
      for (int c = 0; c < 2; c++) {
        const int e = e0 + cw * 64 + 8 * j + 2 * q + c;
        if (e >= n_out) continue;
        const double v = acc[4 * j + 2 * hh + c];
        if (gridDim.z == 1) logits[(size_t)t * n_out + e] = (float)v;
        else partial[((size_t)blockIdx.z * T + t) * n_out + e] = v;
      }
  }
#else
  // The portable PTX image has no wgmma: NaN logits, which the certificate refuses, so every token takes the fp64 path.
  for (int i = tid; i < RW_TOKENS * RW_EXPERTS; i += blockDim.x) {
    const int t = t0 + i / RW_EXPERTS, e = e0 + i % RW_EXPERTS;
    if (t >= T || e >= n_out) continue;
    if (gridDim.z == 1) logits[(size_t)t * n_out + e] = __int_as_float(0x7fc00000);
    else partial[((size_t)blockIdx.z * T + t) * n_out + e] = __longlong_as_double(0x7ff8000000000000LL);
  }
  if (blockIdx.x == 0)
    for (int i = tid; i < RW_TOKENS; i += blockDim.x)
      if (t0 + i < T) x_sq[(size_t)blockIdx.z * T + t0 + i] = 1.f;
#endif
}

// The certificate's key bounds of one expert: the logit interval [l - d, l + d] rounded outwards, mapped through the
// selection key (the logit, or the CPU's fp32 sigmoid + bias, non-decreasing in l), then widened by one ulp. The sigmoid
// bounds use fp32 expf (<= 2 ulp) with a relative margin of 2^-19 on each side, wider than expf's error and the CPU
// formula's own roundings (double exp, fp32 casts).
__device__ __forceinline__ void rf_key_bounds(float l, float d, float bias, int scoring, float& lo, float& hi) {
  const float dl = __fadd_ru(d, fabsf(l) * 2.4e-7f);  // + one fp32 ulp of the fast logit's own rounding
  const float llo = __fsub_rd(l, dl), lhi = __fadd_ru(l, dl);
  if (scoring == 0) {
    lo = llo; hi = lhi;
  } else {
    lo = __fadd_rd(__fmul_rd(__frcp_rd(__fadd_ru(1.0f, expf(-llo))), 1.0f - 0x1p-19f), bias);
    hi = __fadd_ru(__fmul_ru(__frcp_ru(__fadd_rd(1.0f, expf(-lhi))), 1.0f + 0x1p-19f), bias);
  }
  lo = nextafterf(lo, -INFINITY);
  hi = nextafterf(hi, INFINITY);
}

// One warp per token: moe_route_topk's selection and weights from the fast logits, then the certificate; tokens it
// cannot clear are appended to list (order of arrival; each is routed again on its own, so the result does not
// depend on it). x_sq: [splits][T] partial sums of squares; w_norm[e] >= ||w_e||; bound_scale as above.
extern "C" __global__ void __launch_bounds__(RF_ROUTE_WARPS * 32) moe_route_topk_certified(
    const float* __restrict__ logits, const float* __restrict__ bias, int* __restrict__ topk_expert,
    float* __restrict__ topk_weight, float* __restrict__ shared_row_weight, const float* __restrict__ x_sq,
    const float* __restrict__ w_norm, int* __restrict__ list, int* __restrict__ list_count,
    const int* __restrict__ num_tokens, int splits, float bound_scale, int E, int n_out, int k, int scoring,
    int n_group, int topk_group, int norm_topk, float scaling, int shared_gated) {
  const int T = *num_tokens;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const int t = blockIdx.x * RF_ROUTE_WARPS + warp;
  if (t >= T) return;
  extern __shared__ float rf_route_smem[];
  __shared__ int chosen[RF_ROUTE_WARPS][32];
  const MoeTopkScratch sc = moe_topk_scratch<RF_ROUTE_WARPS>(rf_route_smem, warp, E);
  float* key = sc.key;
  float* score = sc.score;
  const unsigned char* okw = sc.okw;
  const float* row = logits + (size_t)t * n_out;
  moe_topk_token(row, bias, t, topk_expert, topk_weight, shared_row_weight, E, k, scoring, n_group, topk_group,
                 norm_topk, scaling, shared_gated, key, score, sc.okw, chosen[warp]);
  __syncwarp();
  // ||x_t|| from the partial sums of squares (fp32 sums of at most a few thousand squares: 1e-3 covers their rounding)
  float s = 0.f;
  for (int z = lane; z < splits; z += 32) s += x_sq[(size_t)z * T + t];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  const float xn = __fsqrt_ru(s * 1.001f);
  // okw now marks the eligible experts not chosen; chosen[warp][0, k) the chosen. key := lower, score := upper bound.
  bool ok = true;
  for (int e = lane; e < E; e += 32) {
    float lo, hi;
    rf_key_bounds(row[e], __fmul_ru(bound_scale, __fmul_ru(xn, w_norm[e])), bias ? bias[e] : 0.f, scoring, lo, hi);
    key[e] = lo;
    score[e] = hi;
    ok &= isfinite(row[e]) && isfinite(lo) && isfinite(hi);  // overflowed or NaN logits: the fp64 path decides
  }
  ok &= isfinite(xn);
  __syncwarp();
  if (n_group > 1) {
    // group g chosen <=> it holds an eligible or chosen expert (topk_group groups); scores: best + second key
    const int gs = E / n_group;
    float glo = INFINITY, ghi = -INFINITY;
    bool chosen_group = false;
    if (lane < n_group) {
      float b1 = -INFINITY, b2 = -INFINITY, u1 = -INFINITY, u2 = -INFINITY;
      for (int i = lane * gs; i < (lane + 1) * gs; i++) {
        const float v = key[i], u = score[i];
        if (v > b1) { b2 = b1; b1 = v; } else if (v > b2) b2 = v;
        if (u > u1) { u2 = u1; u1 = u; } else if (u > u2) u2 = u;
        chosen_group |= okw[i] != 0;
      }
      for (int j = 0; j < k; j++) chosen_group |= chosen[warp][j] / gs == lane;
      glo = __fadd_rd(b1, b2);
      ghi = __fadd_ru(u1, u2);
    }
    float cmin = chosen_group ? glo : INFINITY, omax = (lane < n_group && !chosen_group) ? ghi : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) {
      cmin = fminf(cmin, __shfl_xor_sync(0xffffffffu, cmin, o));
      omax = fmaxf(omax, __shfl_xor_sync(0xffffffffu, omax, o));
    }
    ok &= cmin > omax;
  }
  float cmin = lane < k ? key[chosen[warp][lane]] : INFINITY, omax = -INFINITY;
  for (int e = lane; e < E; e += 32)
    if (okw[e]) omax = fmaxf(omax, score[e]);
  for (int o = 16; o > 0; o >>= 1) {
    cmin = fminf(cmin, __shfl_xor_sync(0xffffffffu, cmin, o));
    omax = fmaxf(omax, __shfl_xor_sync(0xffffffffu, omax, o));
  }
  ok &= cmin > omax;
  ok = __all_sync(0xffffffffu, ok);
  if (!ok && lane == 0) list[atomicAdd(list_count, 1)] = t;
}

// Once at load: w_bf16 = bf16(w) for the n_out x H fp32 router, w_norm[e] >= ||w_e|| (fp64 sum, rounded up), and
// *inexact = the number of values bf16 cannot hold exactly (the certified router needs 0). One warp per row.
extern "C" __global__ void moe_router_prepare_bf16(const float* __restrict__ w, __nv_bfloat16* __restrict__ w_bf16,
                                                   float* __restrict__ w_norm, int* __restrict__ inexact, int n_out, int H) {
  const int lane = threadIdx.x & 31;
  const int e = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (e >= n_out) return;
  double s = 0.0;
  int bad = 0;
  for (int h = lane; h < H; h += 32) {
    const float v = w[(size_t)e * H + h];
    const __nv_bfloat16 b = __float2bfloat16_rn(v);
    w_bf16[(size_t)e * H + h] = b;
    bad += __bfloat162float(b) != v;
    s += (double)v * (double)v;
  }
  for (int o = 16; o > 0; o >>= 1) {
    s += __shfl_xor_sync(0xffffffffu, s, o);
    bad += __shfl_xor_sync(0xffffffffu, bad, o);
  }
  if (lane == 0) {
    w_norm[e] = __double2float_ru(sqrt(s) * (1.0 + 1e-12));
    if (bad) atomicAdd(inexact, bad);
  }
}
