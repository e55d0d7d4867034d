// grouped_gemm.cu: the grouped GEMM entry points of the MoE pipeline (M-grouped contiguous layout; data layouts in
// grouped_gemm.cuh). Every entry point reads the number of used 128-row blocks from device memory
// (num_row_blocks, clamped to max_row_blocks) and the expert of each block from block_expert, so no host
// synchronization is needed and the launches can be captured in a CUDA graph. Grid, block and dynamic shared memory
// of each entry point: dev.sparkmoe.kernels.GroupedGemmConfig.
//
// Arguments (all pointers device pointers; K and N are the GEMM's reduction length and output columns, % 128 == 0):
//   grouped_gemm1_swiglu_bf16(A bf16, W1 bf16 packed [E][2N,K], Hout bf16, block_expert, num_row_blocks, max_row_blocks, K, N, RR)
//   grouped_gemm2_bf16[_n128](A bf16, W2 bf16 [E][N,K], Y f32, row_weight f32[m_padded], block_expert, num_row_blocks, max_row_blocks, K, N, RR)
//   grouped_gemm1_swiglu_fp8[_m128|_m128u|_m128us|_m128usp|_m128usu2|_m128usu2h|_m128usu4|_u|_m128p|_m128s|_pf|_nooverlap|_cluster|_p32|_early|_lookahead](A e4m3, A_scale, W1 e4m3, W1_scale, Hout e4m3, Hout_scale, block_expert, num_row_blocks, max_row_blocks, K, N, RR)
//   grouped_gemm2_fp8[_m128|_m128u|_m128uu2|_u|_m128p|_m128s|_pf|_pfs|_m128n128|_n128|_p32|_early|_lookahead](A e4m3, A_scale, W2 e4m3, W2_scale, Y f32, row_weight, block_expert, num_row_blocks, max_row_blocks, K, N, RR)
//   grouped_gemm1_swiglu_fp8_m128usu2g[1|d](A_tokens e4m3, A_tokens_scale, token_of_slot, W1 e4m3, W1_scale, Hout e4m3, Hout_scale, block_expert, num_row_blocks, max_row_blocks, K, N, RR)
//   grouped_gemm1_swiglu_bf16_g(A_tokens bf16, token_of_slot, W1 bf16, Hout bf16, block_expert, num_row_blocks, max_row_blocks, K, N, RR)
//   *_ybf16: the GEMM2 forms storing Y in bf16 (Y bf16 instead of f32, same arguments).
//   Dynamic-unit forms (Tile::kDynamic: grouped_gemm1_swiglu_bf16_d, grouped_gemm2_bf16_d[_ybf16],
//   grouped_gemm1_swiglu_fp8_m128usu2d, grouped_gemm1_swiglu_fp8_m128usu2gd, grouped_gemm2_fp8_ud[_ybf16],
//   grouped_gemm2_fp8_m128ud[_ybf16], grouped_gemm1_swiglu_fp8_m128usu2dc[n|l] (2-CTA clusters, grid even, 2N/256
//   even)): the same
//   arguments as their static forms followed by uint32_t* work_counter, a pair zeroed before the stream's first launch
//   (every launch leaves it zeroed).
// RR = (const int* expert_count, const int* expert_start), the padding skip, both may be null: expert e's real rows are
// expert_start[e] .. expert_start[e] + expert_count[e] - 1 (expert_start null: every expert starts at row 0, e.g. the
// shared expert with expert_count = the token count). With expert_count given, the FP8 64-row tiles run only the
// 64-row units holding a real row (numbered over those, so the CTAs stay in step) and the 128-row tiles idle their
// second warpgroup on all-padding halves; rows not computed keep their old contents (nothing reads them). The *_ref
// kernels compute every row.
// grouped_gemm2_bf16 and grouped_gemm2_fp8 need N % 256 == 0 (else the *_n128 forms). _p32: promotion every 32 of K
// (sparkmoe.gpu.fp8PromotionInterval=32: more accurate, slower).
// Built by default: the entry points the engine can launch (GroupedGemmConfig: production, accuracy, gather and
// dynamic-unit settings, references). The earlier versions and experiments kept for the benchmarks' comparisons
// (docs/kernel-notes.md: _nooverlap, _cluster, _early, _lookahead, _m128[p|s|u|us|usp|usu4|usu2h|usu2dc[n|l]|n128|uu2],
// _pf[s], _u of GEMM1, the 64-row base tiles, bf16 _u / _g / _s16 / _dc / _x / _dx / _dh, _m128usu2s16, _m128usu2g1,
// _m128usu2[d]x, _m128usu2dh,
// GEMM2 _m128ud / _m128ux, ...) are compiled only with
// -DMOE_BENCH_VARIANTS=1
// (build-kernels.sh under MOE_BENCH_VARIANTS=1), which keeps them out of the engine's fatbin and roughly halves the
// kernel build.
// The *_ref entry points take the same arguments and are the SIMT reference versions (grouped_gemm_ref.cuh).
#include "grouped_gemm_ref.cuh"
#include "grouped_gemm_kernel.cuh"

#ifndef MOE_BENCH_VARIANTS
#define MOE_BENCH_VARIANTS 0
#endif

// sm_90a machine code gets the wgmma kernels; the portable compute_90 PTX (for GPUs without the sm_90a features)
// runs the reference bodies over the same persistent grid instead: slower, same results.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define MOE_HAVE_WGMMA 1
#else
#define MOE_HAVE_WGMMA 0
#endif

namespace {

__device__ __forceinline__ uint32_t used_row_blocks(const int* num_row_blocks, int max_row_blocks) {
    return min((uint32_t)*num_row_blocks, (uint32_t)max_row_blocks);
}

// The *_ref launch shape: CTA (tile, row block), threads 0..127 one row each.
template <class F>
__device__ __forceinline__ void ref_tile_of_this_cta(const int* num_row_blocks, int max_row_blocks, F body) {
    if (blockIdx.y < used_row_blocks(num_row_blocks, max_row_blocks) && threadIdx.x < 128) body(blockIdx.y, blockIdx.x);
}

// Portable fallback inside the persistent launch shape: CTAs stride over (row block, tile).
template <class F>
__device__ __forceinline__ void ref_tiles_strided(const int* num_row_blocks, int max_row_blocks, int N, F body) {
    const uint32_t tiles = (uint32_t)N / 128, total = used_row_blocks(num_row_blocks, max_row_blocks) * tiles;
    for (uint32_t t = blockIdx.x; t < total; t += gridDim.x)
        if (threadIdx.x < 128) body(t / tiles, t % tiles);
}

}  // namespace

#define MOE_REF_BOUNDS __launch_bounds__(128)
#define MOE_FAST_BOUNDS __launch_bounds__(moe_sched::kThreads, 1)

// ---------------- reference (SIMT) entry points ----------------
extern "C" __global__ void MOE_REF_BOUNDS grouped_gemm1_swiglu_bf16_ref(
        const __nv_bfloat16* A, const __nv_bfloat16* W1, __nv_bfloat16* Hout, const int* block_expert,
        const int* num_row_blocks, int max_row_blocks, int K, int N,
        const int* expert_count, const int* expert_start) {
    ref_tile_of_this_cta(num_row_blocks, max_row_blocks, [&](uint32_t rb, uint32_t t) {
        moe_ref::gemm1_swiglu_bf16((const uint8_t*)A, (const uint8_t*)W1, Hout, block_expert, K, N, rb, t);
    });
}

extern "C" __global__ void MOE_REF_BOUNDS grouped_gemm2_bf16_ref(
        const __nv_bfloat16* A, const __nv_bfloat16* W2, float* Y, const float* row_weight, const int* block_expert,
        const int* num_row_blocks, int max_row_blocks, int K, int N,
        const int* expert_count, const int* expert_start) {
    ref_tile_of_this_cta(num_row_blocks, max_row_blocks, [&](uint32_t rb, uint32_t t) {
        moe_ref::gemm2_bf16((const uint8_t*)A, (const uint8_t*)W2, Y, row_weight, block_expert, K, N, rb, t);
    });
}

extern "C" __global__ void MOE_REF_BOUNDS grouped_gemm1_swiglu_fp8_ref(
        const uint8_t* A, const float* A_scale, const uint8_t* W1, const float* W1_scale, uint8_t* Hout, float* Hout_scale,
        const int* block_expert, const int* num_row_blocks, int max_row_blocks, int K, int N,
        const int* expert_count, const int* expert_start) {
    ref_tile_of_this_cta(num_row_blocks, max_row_blocks, [&](uint32_t rb, uint32_t t) {
        moe_ref::gemm1_swiglu_fp8(A, A_scale, W1, W1_scale, Hout, Hout_scale, block_expert, K, N, rb, t);
    });
}

extern "C" __global__ void MOE_REF_BOUNDS grouped_gemm2_fp8_ref(
        const uint8_t* A, const float* A_scale, const uint8_t* W2, const float* W2_scale, float* Y, const float* row_weight,
        const int* block_expert, const int* num_row_blocks, int max_row_blocks, int K, int N,
        const int* expert_count, const int* expert_start) {
    ref_tile_of_this_cta(num_row_blocks, max_row_blocks, [&](uint32_t rb, uint32_t t) {
        moe_ref::gemm2_fp8(A, A_scale, W2, W2_scale, Y, row_weight, block_expert, K, N, rb, t);
    });
}

// ---------------- production entry points: wgmma + bulk copies + warp specialization ----------------
// Launch: grid = min(SMs, worst-case work units) (persistent), 384 threads, dynamic shared memory Tile::SMEM_BYTES.
// 128 rows x 128 output columns (256 packed rows); the next unit looked up during the first K block (Tile kLookahead,
// session 17: +1.3..3 % alone on the issue's gate+up shapes; the engine runs it with sparkmoe.gpu.gemmDynamicUnits=off -
// as the default for few-expert launches it made the Mixtral BF16 layer 4-7 % slower, docs/kernel-notes.md v19)
using TileSwiGLUBf16 = moe_sched::Tile<128, 256, 4, false, 1, 4, true, false, true>;
// BF16 GEMM2 looks its next unit up while the unit's first K block computes (kLookahead, session 17; measured as the
// benchmark variant _l in session 16: +0.9..1.1 % on the down shape, -1.0 % on layer-like down rows, kernel-notes v15)
using TileDownBf16 = moe_sched::Tile<128, 256, 4, false, 1, 4, true, false, true>;
using TileDownBf16N128 = moe_sched::Tile<128, 128, 6, false>;  // when N % 256 != 0
// _u (session 4, lead; not yet run on a GPU): the BF16 tiles with the v5 warp-uniform descriptor arithmetic
using TileSwiGLUBf16Uniform = moe_sched::Tile<128, 256, 4, false, 1, 4, true, false, false, false, false, false, true>;
using TileDownBf16Uniform = moe_sched::Tile<128, 256, 4, false, 1, 4, true, false, false, false, false, false, true>;
// FP8: 64 rows x 256 packed weight rows per CTA, the two consumer warpgroups on the two 128-row halves of the weight
// tile, each with two accumulator sets (promotion of K block kb overlaps the wgmmas of kb+1). GEMM1: 128 output
// columns per CTA = one re-quantization block. GEMM2 falls back to 128 x 128 when N % 256 != 0.
// Production (GroupedGemmConfig.choose, session 4): GEMM2 = this 64-row tile in its v5 form _u; GEMM1 = the 128-row
// tile in its v5 form _m128usu2 (below).
using TileSwiGLUFp8 = moe_sched::Tile<64, 256, 5, true>;
using TileDownFp8 = moe_sched::Tile<64, 256, 5, true>;
using TileDownFp8N128 = moe_sched::Tile<128, 128, 6, false, 1, 4, false>;
// Variants kept for the benchmark's comparisons (docs/kernel-notes.md): no promotion overlap, 2-CTA cluster with B
// multicast, promotion every 32 of K (more accurate, slower).
using TileSwiGLUFp8NoOverlap = moe_sched::Tile<64, 256, 5, true, 1, 4, false>;
using TileSwiGLUFp8Cluster = moe_sched::Tile<64, 256, 5, true, 2>;
using TileSwiGLUFp8Promote32 = moe_sched::Tile<64, 256, 5, true, 1, 1>;
using TileDownFp8Promote32 = moe_sched::Tile<64, 256, 5, true, 1, 1>;
// next unit's first K block issued before the epilogue
using TileSwiGLUFp8Early = moe_sched::Tile<64, 256, 5, true, 1, 4, true, true>;
using TileDownFp8Early = moe_sched::Tile<64, 256, 5, true, 1, 4, true, true>;
// next unit looked up while the current unit's first K block computes (session 2 v3.1-v3.2 production)
using TileSwiGLUFp8Lookahead = moe_sched::Tile<64, 256, 5, true, 1, 4, true, false, true>;
using TileDownFp8Lookahead = moe_sched::Tile<64, 256, 5, true, 1, 4, true, false, true>;
// v4 (session 3): 128 rows x 256 packed rows, each warpgroup 64 rows x 256 as two wgmma halves into one accumulator
// (grouped_gemm_schedule.cuh, kHalves): 40 % fewer L2->SM bytes per FLOP than the 64 x 256 tile; GEMM2 also as
// 128 x 128 with the promotion overlap.
using TileSwiGLUFp8M128 = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true>;
using TileDownFp8M128 = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true>;
using TileDownFp8M128N128 = moe_sched::Tile<128, 128, 6, false, 1, 4, true>;
// v4.1: _pf = the 64-row production tile with the producer's next-unit lookup and GEMM2's routing weights fetched
// early; _m128p = _m128 with the producer's early lookup; _m128s = _m128p with the second warpgroup two K blocks
// behind the first (their epilogues no longer coincide).
using TileSwiGLUFp8Prefetch = moe_sched::Tile<64, 256, 5, true, 1, 4, true, false, false, false, true>;
using TileDownFp8Prefetch = moe_sched::Tile<64, 256, 5, true, 1, 4, true, false, false, false, true>;
using TileSwiGLUFp8M128Prefetch = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, true>;
using TileDownFp8M128Prefetch = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, true>;
using TileSwiGLUFp8M128Stagger = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, true, true>;
using TileDownFp8M128Stagger = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, true, true>;
// _pfs (GEMM2 only): _pf with the second warpgroup two K blocks behind
using TileDownFp8PrefetchStagger = moe_sched::Tile<64, 256, 5, true, 1, 4, true, false, false, false, true, true>;
// v5 (session 4): the same tiles with warp-uniform descriptor arithmetic (Tile::kUniform): _m128u = _m128, _u = the
// 64-row tile (v3.3)
using TileSwiGLUFp8M128Uniform = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true>;
// (GEMM2's _m128u: 3 stages since session 14 - 1.5-2.4 % faster than 4 on the issue's down shape and the DeepSeek-V3
// layer's down GEMMs, docs/kernel-notes.md v11)
// (session 15: with the stage's descriptor low words carried through the K loop, Tile kIncDesc: +0.4..0.6 % on the
// down shape, docs/kernel-notes.md v12)
// (session 16: the consumers look their next unit up while the unit's first wgmma group computes, Tile kLookahead,
// instead of after the epilogue: +1.3..1.5 % on the down shape, docs/kernel-notes.md v15)
using TileDownFp8M128Uniform =
        moe_sched::Tile<128, 256, 3, false, 1, 4, false, false, true, true, false, false, true, 0, 1, false, false, 0, 0, 0, false, 0, false, true>;
using TileSwiGLUFp8Uniform = moe_sched::Tile<64, 256, 5, true, 1, 4, true, false, false, false, false, false, true>;
// _m128us (GEMM1 only): _m128u whose e4m3 output goes through shared memory and one bulk store per warpgroup
using TileSwiGLUFp8M128UniformStaged = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true>;
// experiments on _m128us: _m128usp = with the producer's early next-unit lookup (kPrefetch), _m128usu2 = its K-block
// loop unrolled by 2
using TileSwiGLUFp8M128UniformStagedPrefetch = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, true, false, true, true>;
// (session 17: the static-order _m128usu2 with carried descriptors, Tile kIncDesc, and its next unit looked up during
// the unit's first wgmma group, Tile kLookahead, as the production GEMM2 _m128u: +1..1.5 % on full blocks, 7 % on
// 16384-token DeepSeek-V3 rows; the engine's FP8 GEMM1 where row blocks are full, GroupedGemmConfig.staticGemm1,
// docs/kernel-notes.md v19)
using TileSwiGLUFp8M128UniformStagedUnroll2 =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, true, true, false, false, true, 1, 2, false, false, 0, 0, 0, false, 0, false, true>;
// _m128usu4: unrolled by 4; _m128uu2 (GEMM2): _m128u with the K-block loop unrolled by 2
using TileSwiGLUFp8M128UniformStagedUnroll4 = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 4>;
using TileDownFp8M128UniformUnroll2 = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, false, 2>;
// (session 15: with carried descriptors, Tile kIncDesc, as the dynamic form _ud below)
using TileDownFp8Uniform =
        moe_sched::Tile<64, 256, 5, true, 1, 4, true, false, false, false, false, false, true, 0, 1, false, false, 0, 0, 0, false, 0, false, true>;
// _m128usu2h (session 4, lead): _m128usu2 whose units of at most 64 real rows (experts' spill blocks) are split along
// N between the two warpgroups instead of idling the second one (Tile::kSplitSpill)
using TileSwiGLUFp8M128UniformStagedUnroll2Split = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 2, true>;

// _d / _ud (session 6, lead): the production tiles with units claimed at run time (Tile::kDynamic); their entry
// points take one more argument, the launch's work-counter pair (two zeroed uint32, Params::work_counter).
using TileSwiGLUBf16Dynamic = moe_sched::Tile<128, 256, 4, false, 1, 4, true, false, false, false, false, false, false, false, 1, false, true>;
using TileDownBf16Dynamic = moe_sched::Tile<128, 256, 4, false, 1, 4, true, false, false, false, false, false, false, false, 1, false, true>;
// (session 15: with the stage's descriptor low words carried through the K loop, Tile kIncDesc: +0.5..1 % on the
// GEMM1 shapes, docs/kernel-notes.md v12)
using TileSwiGLUFp8M128UniformStagedUnroll2Dynamic =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 2, false, true, 0, 0, 0, false, 0, false, true>;
// v10 (session 10, lead; benchmark variants): the production 128-row FP8 tiles with A from registers (Tile kRegA):
// q = the quarter-pipelined mainloop (kQuarters), r = the halves loop as it is (kRegAHalves)
using TileSwiGLUFp8M128UniformStagedUnroll2DynamicQuarters =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 2, false, true, 0, 0, 1>;
using TileDownFp8M128UniformQuarters =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, false, 1, false, false, 0, 0, 1>;
using TileSwiGLUFp8M128UniformStagedUnroll2DynamicRegA =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 2, false, true, 0, 0, 2>;
using TileDownFp8M128UniformRegA =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, false, 1, false, false, 0, 0, 2>;
// (session 15: with carried descriptors, Tile kIncDesc: -0.4..-1.7 % time on the DeepSeek-V3 layer's down rows)
using TileDownFp8UniformDynamic =
        moe_sched::Tile<64, 256, 5, true, 1, 4, true, false, false, false, false, false, true, 0, 1, false, true, 0, 0, 0, false, 0, false, true>;
// session 14 (benchmark variants, docs/kernel-notes.md v11): the 128-row GEMM2 tile with its former 4 stages (_m128u4),
// and with its bf16 Y staged in shared memory and stored by bulk copies (_m128uy; Tile kStagedStore 2: 2 x 33 KB of
// staging leave room for 3 stages only; slower than _m128u on the issue's down shape)
using TileDownFp8M128Uniform4 = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true>;
using TileDownFp8M128UniformStagedY =
        moe_sched::Tile<128, 256, 3, false, 1, 4, false, false, false, true, false, false, true, 2>;
// GEMM1 on N pairs (Tile kPairN, _m128pn): 2-CTA clusters, each CTA 128 rows x 128 packed rows with the overlapped
// two-accumulator loop, A multicast, row maxima exchanged through distributed shared memory (session 14: correct,
// 10-23 % slower than _m128usu2d, docs/kernel-notes.md v11)
using TileSwiGLUFp8PairN =
        moe_sched::Tile<128, 128, 6, false, 2, 4, true, false, false, false, false, false, true, 0, 1, false, false, 0, 0, 0, true>;
// and the production GEMM1 tile _m128usu2d with 3 stages (_m128usu2d3)
using TileSwiGLUFp8M128UniformStagedUnroll2Dynamic3 =
        moe_sched::Tile<128, 256, 3, false, 1, 4, false, false, false, true, false, false, true, 1, 2, false, true>;
// session 15 (benchmark variants, docs/kernel-notes.md v12): the production 128-row FP8 tiles with rolling 64-wide wgmma
// groups (Tile kRoll): w = every unit, ws = only units whose second warpgroup idles; and DeepGEMM's 128 x 192 GEMM1
// tile shape writing fp32 SwiGLU rows (Tile kWide, w192: correct, 5-10 % slower than _m128usu2d)
using TileSwiGLUFp8M128UniformStagedUnroll2DynamicRoll =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 2, false, true, 0, 0, 0, false, 1>;
using TileSwiGLUFp8M128UniformStagedUnroll2DynamicRollSpill =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 2, false, true, 0, 0, 0, false, 2>;
using TileDownFp8M128UniformRoll =
        moe_sched::Tile<128, 256, 3, false, 1, 4, false, false, false, true, false, false, true, 0, 1, false, false, 0, 0, 0, false, 1>;
using TileSwiGLUFp8Wide =
        moe_sched::Tile<128, 192, 5, false, 1, 4, false, false, false, false, false, false, true, 0, 1, false, true, 0, 0, 0, false, 0, true>;
// CLUSTER: __cluster_dims__(2, 1, 1) for the multicast tiles (a plain cuLaunchKernel then launches pairs of CTAs;
// the grid must be even).
#define MOE_CLUSTER2 __cluster_dims__(2, 1, 1)
#define MOE_NO_CLUSTER
#define MOE_COUNTER_PARAM_0
#define MOE_COUNTER_PARAM_1 , uint32_t* work_counter
#define MOE_COUNTER_ARG_0 nullptr
#define MOE_COUNTER_ARG_1 work_counter

#if MOE_HAVE_WGMMA
#define MOE_GEMM1_BF16_BODY(TILE, COUNTER)                                                                                      \
    moe_gemm::Params p{(const uint8_t*)A, nullptr, (const uint8_t*)W1, nullptr, Hout, nullptr, nullptr,               \
                       block_expert, num_row_blocks, (uint32_t)max_row_blocks, (uint32_t)K, (uint32_t)N,                \
                       expert_count, expert_start};                                                                    \
    p.work_counter = COUNTER;                                                                                          \
    moe_gemm::grouped_gemm<false, TILE, true>(p);
#else
#define MOE_GEMM1_BF16_BODY(TILE, COUNTER)                                                                                      \
    ref_tiles_strided(num_row_blocks, max_row_blocks, N, [&](uint32_t rb, uint32_t t) {                               \
        moe_ref::gemm1_swiglu_bf16((const uint8_t*)A, (const uint8_t*)W1, Hout, block_expert, K, N, rb, t);           \
    });
#endif
#define MOE_GEMM1_BF16_ENTRY(NAME, TILE, CLUSTER, DYN)                                                                  \
    extern "C" __global__ void MOE_FAST_BOUNDS CLUSTER NAME(                                                           \
            const __nv_bfloat16* A, const __nv_bfloat16* W1, __nv_bfloat16* Hout, const int* block_expert,             \
            const int* num_row_blocks, int max_row_blocks, int K, int N, \
            const int* expert_count, const int* expert_start MOE_COUNTER_PARAM_##DYN) {                                \
        MOE_GEMM1_BF16_BODY(TILE, MOE_COUNTER_ARG_##DYN)                                                               \
    }
#define MOE_GEMM1_BF16(NAME, TILE, DYN) MOE_GEMM1_BF16_ENTRY(NAME, TILE, MOE_NO_CLUSTER, DYN)
MOE_GEMM1_BF16(grouped_gemm1_swiglu_bf16, TileSwiGLUBf16, 0)
#if MOE_BENCH_VARIANTS
MOE_GEMM1_BF16(grouped_gemm1_swiglu_bf16_u, TileSwiGLUBf16Uniform, 0)
#endif
MOE_GEMM1_BF16(grouped_gemm1_swiglu_bf16_d, TileSwiGLUBf16Dynamic, 1)
#if MOE_BENCH_VARIANTS
// _s16 (benchmark variants, GEMM1 and GEMM2): the static BF16 tile before session 17 (next unit looked up after the
// epilogue), the baseline that production's lookahead is measured against (docs/kernel-notes.md v16, v19)
using TileBf16AfterEpilogue = moe_sched::Tile<128, 256, 4, false>;
MOE_GEMM1_BF16(grouped_gemm1_swiglu_bf16_s16, TileBf16AfterEpilogue, 0)
// _dx / _x (session 18): the claiming and the static BF16 GEMM1 walking each expert's row blocks in balanced chunks
// (Tile kGroupOrder 1, as the FP8 _m128usu2dx / _m128usu2x variants)
using TileSwiGLUBf16DynamicExpertChunks =
        moe_sched::Tile<128, 256, 4, false, 1, 4, true, false, false, false, false, false, false, 0, 1, false, true, 0, 0, 0, false, 0, false, false, 1>;
using TileSwiGLUBf16ExpertChunks =
        moe_sched::Tile<128, 256, 4, false, 1, 4, true, false, true, false, false, false, false, 0, 1, false, false, 0, 0, 0, false, 0, false, false, 1>;
MOE_GEMM1_BF16(grouped_gemm1_swiglu_bf16_dx, TileSwiGLUBf16DynamicExpertChunks, 1)
MOE_GEMM1_BF16(grouped_gemm1_swiglu_bf16_x, TileSwiGLUBf16ExpertChunks, 0)
// _dh (session 18): the claiming BF16 GEMM1 tile with the static stride handed over by its producer (Tile kDynamic 2:
// the static order without the consumers' own lookups; its work-counter argument is unused)
using TileSwiGLUBf16StrideHandoff = moe_sched::Tile<128, 256, 4, false, 1, 4, true, false, false, false, false, false, false, 0, 1, false, 2>;
MOE_GEMM1_BF16(grouped_gemm1_swiglu_bf16_dh, TileSwiGLUBf16StrideHandoff, 1)
// _dc (session 17; benchmark variant): the BF16 GEMM1 tile on 2-CTA pair units with the weight tile multicast (Tile::kPairB,
// as the FP8 _m128usu2dc of v8): BF16 moves twice FP8's bytes per FLOP from L2, so the halved B traffic may pay here
using TileSwiGLUBf16DynamicPair =
        moe_sched::Tile<128, 256, 4, false, 2, 4, true, false, false, false, false, false, true, 0, 1, false, true, 0, 1>;
MOE_GEMM1_BF16_ENTRY(grouped_gemm1_swiglu_bf16_dc, TileSwiGLUBf16DynamicPair, MOE_CLUSTER2, 1)
#endif

#if MOE_HAVE_WGMMA
#define MOE_GEMM2_BF16_BODY(TILE, COUNTER)                                                                                      \
    moe_gemm::Params p{(const uint8_t*)A, nullptr, (const uint8_t*)W2, nullptr, Y, nullptr, row_weight,               \
                       block_expert, num_row_blocks, (uint32_t)max_row_blocks, (uint32_t)K, (uint32_t)N,                \
                       expert_count, expert_start};                                                                    \
    p.work_counter = COUNTER;                                                                                          \
    moe_gemm::grouped_gemm<false, TILE, false>(p);
#else
#define MOE_GEMM2_BF16_BODY(TILE, COUNTER)                                                                                      \
    ref_tiles_strided(num_row_blocks, max_row_blocks, N, [&](uint32_t rb, uint32_t t) {                               \
        moe_ref::gemm2_bf16((const uint8_t*)A, (const uint8_t*)W2, Y, row_weight, block_expert, K, N, rb, t);         \
    });
#endif
#define MOE_GEMM2_BF16(NAME, TILE, DYN)                                                                                \
    extern "C" __global__ void MOE_FAST_BOUNDS NAME(                                                                   \
            const __nv_bfloat16* A, const __nv_bfloat16* W2, float* Y, const float* row_weight, const int* block_expert,\
            const int* num_row_blocks, int max_row_blocks, int K, int N, \
            const int* expert_count, const int* expert_start MOE_COUNTER_PARAM_##DYN) {                                \
        MOE_GEMM2_BF16_BODY(TILE, MOE_COUNTER_ARG_##DYN)                                                               \
    }
MOE_GEMM2_BF16(grouped_gemm2_bf16, TileDownBf16, 0)
MOE_GEMM2_BF16(grouped_gemm2_bf16_n128, TileDownBf16N128, 0)
#if MOE_BENCH_VARIANTS
MOE_GEMM2_BF16(grouped_gemm2_bf16_u, TileDownBf16Uniform, 0)
MOE_GEMM2_BF16(grouped_gemm2_bf16_s16, TileBf16AfterEpilogue, 0)
#endif
MOE_GEMM2_BF16(grouped_gemm2_bf16_d, TileDownBf16Dynamic, 1)

#if MOE_HAVE_WGMMA
#define MOE_GEMM1_FP8_BODY(TILE, COUNTER)                                                                                       \
    moe_gemm::Params p{A, A_scale, W1, W1_scale, Hout, Hout_scale, nullptr,                                           \
                       block_expert, num_row_blocks, (uint32_t)max_row_blocks, (uint32_t)K, (uint32_t)N,                \
                       expert_count, expert_start};                                                                    \
    p.work_counter = COUNTER;                                                                                          \
    moe_gemm::grouped_gemm<true, TILE, true>(p);
#else
#define MOE_GEMM1_FP8_BODY(TILE, COUNTER)                                                                                       \
    ref_tiles_strided(num_row_blocks, max_row_blocks, N, [&](uint32_t rb, uint32_t t) {                               \
        moe_ref::gemm1_swiglu_fp8(A, A_scale, W1, W1_scale, Hout, Hout_scale, block_expert, K, N, rb, t);             \
    });
#endif
#define MOE_GEMM1_FP8_ENTRY(NAME, TILE, CLUSTER, DYN)                                                                   \
    extern "C" __global__ void MOE_FAST_BOUNDS CLUSTER NAME(                                                           \
            const uint8_t* A, const float* A_scale, const uint8_t* W1, const float* W1_scale, uint8_t* Hout,           \
            float* Hout_scale, const int* block_expert, const int* num_row_blocks, int max_row_blocks, int K, int N, \
            const int* expert_count, const int* expert_start MOE_COUNTER_PARAM_##DYN) {                                \
        MOE_GEMM1_FP8_BODY(TILE, MOE_COUNTER_ARG_##DYN)                                                                \
    }
#define MOE_GEMM1_FP8(NAME, TILE, CLUSTER) MOE_GEMM1_FP8_ENTRY(NAME, TILE, CLUSTER, 0)
#if MOE_BENCH_VARIANTS
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8, TileSwiGLUFp8, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_nooverlap, TileSwiGLUFp8NoOverlap, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_cluster, TileSwiGLUFp8Cluster, MOE_CLUSTER2)
#endif
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_p32, TileSwiGLUFp8Promote32, MOE_NO_CLUSTER)
#if MOE_BENCH_VARIANTS
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_early, TileSwiGLUFp8Early, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_lookahead, TileSwiGLUFp8Lookahead, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_m128, TileSwiGLUFp8M128, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_pf, TileSwiGLUFp8Prefetch, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_m128p, TileSwiGLUFp8M128Prefetch, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_m128s, TileSwiGLUFp8M128Stagger, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_m128u, TileSwiGLUFp8M128Uniform, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_u, TileSwiGLUFp8Uniform, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_m128us, TileSwiGLUFp8M128UniformStaged, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_m128usp, TileSwiGLUFp8M128UniformStagedPrefetch, MOE_NO_CLUSTER)
#endif
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_m128usu2, TileSwiGLUFp8M128UniformStagedUnroll2, MOE_NO_CLUSTER)
#if MOE_BENCH_VARIANTS
// _m128usu2s16 (benchmark variant): the static _m128usu2 before session 17 (next unit looked up after the epilogue,
// descriptors derived from the stage index)
using TileSwiGLUFp8M128UniformStagedUnroll2S16 = moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 2>;
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_m128usu2s16, TileSwiGLUFp8M128UniformStagedUnroll2S16, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_m128usu4, TileSwiGLUFp8M128UniformStagedUnroll4, MOE_NO_CLUSTER)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_m128usu2h, TileSwiGLUFp8M128UniformStagedUnroll2Split, MOE_NO_CLUSTER)
#endif
MOE_GEMM1_FP8_ENTRY(grouped_gemm1_swiglu_fp8_m128usu2d, TileSwiGLUFp8M128UniformStagedUnroll2Dynamic, MOE_NO_CLUSTER, 1)
#if MOE_BENCH_VARIANTS
// session 18 (benchmark variants, docs/kernel-notes.md v20): the production tiles walking each expert's row blocks in
// balanced chunks of 8-15 (Tile kGroupOrder 1) - _dx the claiming tile (instead of chunks of 8 and a short last one:
// layers within +-0.4 %), _x the static tile (instead of fixed chunks of 8 over all row blocks: 4-16 % SLOWER)
using TileSwiGLUFp8M128UniformStagedUnroll2DynamicExpertChunks =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 2, false, true, 0, 0, 0, false, 0, false, true, 1>;
using TileSwiGLUFp8M128UniformStagedUnroll2ExpertChunks =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, true, true, false, false, true, 1, 2, false, false, 0, 0, 0, false, 0, false, true, 1>;
MOE_GEMM1_FP8_ENTRY(grouped_gemm1_swiglu_fp8_m128usu2dx, TileSwiGLUFp8M128UniformStagedUnroll2DynamicExpertChunks, MOE_NO_CLUSTER, 1)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_m128usu2x, TileSwiGLUFp8M128UniformStagedUnroll2ExpertChunks, MOE_NO_CLUSTER)
// _m128usu2dh: the claiming tile with the static stride handed over by its producer (Tile kDynamic 2, as BF16 _dh)
using TileSwiGLUFp8M128UniformStagedUnroll2StrideHandoff =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 2, false, 2, 0, 0, 0, false, 0, false, true>;
MOE_GEMM1_FP8_ENTRY(grouped_gemm1_swiglu_fp8_m128usu2dh, TileSwiGLUFp8M128UniformStagedUnroll2StrideHandoff, MOE_NO_CLUSTER, 1)
MOE_GEMM1_FP8_ENTRY(grouped_gemm1_swiglu_fp8_m128usu2dq, TileSwiGLUFp8M128UniformStagedUnroll2DynamicQuarters, MOE_NO_CLUSTER, 1)
MOE_GEMM1_FP8_ENTRY(grouped_gemm1_swiglu_fp8_m128usu2dr, TileSwiGLUFp8M128UniformStagedUnroll2DynamicRegA, MOE_NO_CLUSTER, 1)
MOE_GEMM1_FP8_ENTRY(grouped_gemm1_swiglu_fp8_m128usu2d3, TileSwiGLUFp8M128UniformStagedUnroll2Dynamic3, MOE_NO_CLUSTER, 1)
MOE_GEMM1_FP8(grouped_gemm1_swiglu_fp8_m128pn, TileSwiGLUFp8PairN, MOE_CLUSTER2)
MOE_GEMM1_FP8_ENTRY(grouped_gemm1_swiglu_fp8_m128usu2dw, TileSwiGLUFp8M128UniformStagedUnroll2DynamicRoll, MOE_NO_CLUSTER, 1)
MOE_GEMM1_FP8_ENTRY(grouped_gemm1_swiglu_fp8_m128usu2dws, TileSwiGLUFp8M128UniformStagedUnroll2DynamicRollSpill, MOE_NO_CLUSTER, 1)
// _w192 (Tile kWide): Hout is a float [rows][I] buffer of SwiGLU rows, Hout_scale unused
MOE_GEMM1_FP8_ENTRY(grouped_gemm1_swiglu_fp8_w192, TileSwiGLUFp8Wide, MOE_NO_CLUSTER, 1)
#endif
// _m128usu2dc (v8, session 7, helper mcast7; benchmark variant: correct, 0-2.4 % slower than _m128usu2d on the H200,
// docs/kernel-notes.md v8): _m128usu2d in 2-CTA clusters
// on pair units (Tile::kPairB): two row blocks of one expert on one N tile share the weight tile by multicast (each CTA
// loads half), or an expert's odd last row block runs on two adjacent N tiles. Same arguments as _m128usu2d (a zeroed
// work-counter pair); grid even (clusters launch whole); needs 2 * N / 256 even.
using TileSwiGLUFp8M128UniformStagedUnroll2DynamicPair =
        moe_sched::Tile<128, 256, 4, false, 2, 4, false, false, false, true, false, false, true, true, 2, false, true, 0, 1>;
#if MOE_BENCH_VARIANTS
MOE_GEMM1_FP8_ENTRY(grouped_gemm1_swiglu_fp8_m128usu2dc, TileSwiGLUFp8M128UniformStagedUnroll2DynamicPair, MOE_CLUSTER2, 1)
#endif
// diagnostics of v8: _m128usu2dcn = the same pairs and barriers without multicast (each CTA loads its full B);
// _m128usu2dcl = _m128usu2dc with the release's own / partner arrives issued by two lanes at once
using TileSwiGLUFp8M128UniformStagedUnroll2DynamicPairNoMulticast =
        moe_sched::Tile<128, 256, 4, false, 2, 4, false, false, false, true, false, false, true, true, 2, false, true, 0, 2>;
using TileSwiGLUFp8M128UniformStagedUnroll2DynamicPairLaneRelease =
        moe_sched::Tile<128, 256, 4, false, 2, 4, false, false, false, true, false, false, true, true, 2, false, true, 0, 3>;
#if MOE_BENCH_VARIANTS
MOE_GEMM1_FP8_ENTRY(grouped_gemm1_swiglu_fp8_m128usu2dcn, TileSwiGLUFp8M128UniformStagedUnroll2DynamicPairNoMulticast, MOE_CLUSTER2, 1)
MOE_GEMM1_FP8_ENTRY(grouped_gemm1_swiglu_fp8_m128usu2dcl, TileSwiGLUFp8M128UniformStagedUnroll2DynamicPairLaneRelease, MOE_CLUSTER2, 1)
#endif

#if MOE_HAVE_WGMMA
#define MOE_GEMM2_FP8_BODY(TILE, COUNTER)                                                                                       \
    moe_gemm::Params p{A, A_scale, W2, W2_scale, Y, nullptr, row_weight,                                               \
                       block_expert, num_row_blocks, (uint32_t)max_row_blocks, (uint32_t)K, (uint32_t)N,                \
                       expert_count, expert_start};                                                                    \
    p.work_counter = COUNTER;                                                                                          \
    moe_gemm::grouped_gemm<true, TILE, false>(p);
#else
#define MOE_GEMM2_FP8_BODY(TILE, COUNTER)                                                                                       \
    ref_tiles_strided(num_row_blocks, max_row_blocks, N, [&](uint32_t rb, uint32_t t) {                               \
        moe_ref::gemm2_fp8(A, A_scale, W2, W2_scale, Y, row_weight, block_expert, K, N, rb, t);                       \
    });
#endif
#define MOE_GEMM2_FP8_ENTRY(NAME, TILE, CLUSTER, DYN)                                                                   \
    extern "C" __global__ void MOE_FAST_BOUNDS CLUSTER NAME(                                                           \
            const uint8_t* A, const float* A_scale, const uint8_t* W2, const float* W2_scale, float* Y,                \
            const float* row_weight, const int* block_expert, const int* num_row_blocks, int max_row_blocks, int K, int N, \
            const int* expert_count, const int* expert_start MOE_COUNTER_PARAM_##DYN) {                                \
        MOE_GEMM2_FP8_BODY(TILE, MOE_COUNTER_ARG_##DYN)                                                                \
    }
#define MOE_GEMM2_FP8(NAME, TILE, CLUSTER) MOE_GEMM2_FP8_ENTRY(NAME, TILE, CLUSTER, 0)
#if MOE_BENCH_VARIANTS
MOE_GEMM2_FP8(grouped_gemm2_fp8, TileDownFp8, MOE_NO_CLUSTER)
#endif
MOE_GEMM2_FP8(grouped_gemm2_fp8_n128, TileDownFp8N128, MOE_NO_CLUSTER)
MOE_GEMM2_FP8(grouped_gemm2_fp8_p32, TileDownFp8Promote32, MOE_NO_CLUSTER)
#if MOE_BENCH_VARIANTS
MOE_GEMM2_FP8(grouped_gemm2_fp8_early, TileDownFp8Early, MOE_NO_CLUSTER)
MOE_GEMM2_FP8(grouped_gemm2_fp8_lookahead, TileDownFp8Lookahead, MOE_NO_CLUSTER)
MOE_GEMM2_FP8(grouped_gemm2_fp8_m128, TileDownFp8M128, MOE_NO_CLUSTER)
MOE_GEMM2_FP8(grouped_gemm2_fp8_m128n128, TileDownFp8M128N128, MOE_NO_CLUSTER)
MOE_GEMM2_FP8(grouped_gemm2_fp8_pf, TileDownFp8Prefetch, MOE_NO_CLUSTER)
MOE_GEMM2_FP8(grouped_gemm2_fp8_m128p, TileDownFp8M128Prefetch, MOE_NO_CLUSTER)
MOE_GEMM2_FP8(grouped_gemm2_fp8_m128s, TileDownFp8M128Stagger, MOE_NO_CLUSTER)
MOE_GEMM2_FP8(grouped_gemm2_fp8_pfs, TileDownFp8PrefetchStagger, MOE_NO_CLUSTER)
#endif

// ---------------- GEMM2 with a bf16 Y (sparkmoe.gpu.expertOutputPrecision=bf16) ----------------
// The production GEMM2 kernels with the epilogue storing row_weight * result rounded to bf16 (nearest even) into a
// row-major bf16 Y [m_padded, N] (half the bytes GEMM2 writes and combine reads). Entry point = the fp32-Y kernel's
// name + "_ybf16", same arguments but Y. sm_90a only: the portable compute_90 build has no bf16-Y reference body and
// traps (the engine refuses the setting on other GPUs and with the reference GEMMs).
#if MOE_HAVE_WGMMA
#define MOE_GEMM2_YBF16_BODY(FP8, TILE, A_SCALE, W_SCALE, COUNTER)                                                              \
    moe_gemm::Params p{(const uint8_t*)A, A_SCALE, (const uint8_t*)W2, W_SCALE, Y, nullptr, row_weight,               \
                       block_expert, num_row_blocks, (uint32_t)max_row_blocks, (uint32_t)K, (uint32_t)N,                \
                       expert_count, expert_start, true};                                                              \
    p.work_counter = COUNTER;                                                                                          \
    moe_gemm::grouped_gemm<FP8, TILE, false>(p);
#else
#define MOE_GEMM2_YBF16_BODY(FP8, TILE, A_SCALE, W_SCALE, COUNTER) __trap();
#endif
#define MOE_GEMM2_BF16_YBF16_ENTRY(NAME, TILE, DYN)                                                                    \
    extern "C" __global__ void MOE_FAST_BOUNDS NAME(                                                                   \
            const __nv_bfloat16* A, const __nv_bfloat16* W2, __nv_bfloat16* Y, const float* row_weight,                \
            const int* block_expert, const int* num_row_blocks, int max_row_blocks, int K, int N,                      \
            const int* expert_count, const int* expert_start MOE_COUNTER_PARAM_##DYN) {                                \
        MOE_GEMM2_YBF16_BODY(false, TILE, nullptr, nullptr, MOE_COUNTER_ARG_##DYN)                                     \
    }
#define MOE_GEMM2_BF16_YBF16(NAME, TILE) MOE_GEMM2_BF16_YBF16_ENTRY(NAME, TILE, 0)
#define MOE_GEMM2_FP8_YBF16_ENTRY(NAME, TILE, DYN)                                                                     \
    extern "C" __global__ void MOE_FAST_BOUNDS NAME(                                                                   \
            const uint8_t* A, const float* A_scale, const uint8_t* W2, const float* W2_scale, __nv_bfloat16* Y,        \
            const float* row_weight, const int* block_expert, const int* num_row_blocks, int max_row_blocks, int K, int N, \
            const int* expert_count, const int* expert_start MOE_COUNTER_PARAM_##DYN) {                                \
        MOE_GEMM2_YBF16_BODY(true, TILE, A_scale, W2_scale, MOE_COUNTER_ARG_##DYN)                                     \
    }
#define MOE_GEMM2_FP8_YBF16(NAME, TILE) MOE_GEMM2_FP8_YBF16_ENTRY(NAME, TILE, 0)
MOE_GEMM2_BF16_YBF16(grouped_gemm2_bf16_ybf16, TileDownBf16)
MOE_GEMM2_BF16_YBF16(grouped_gemm2_bf16_n128_ybf16, TileDownBf16N128)
#if MOE_BENCH_VARIANTS
MOE_GEMM2_BF16_YBF16(grouped_gemm2_bf16_s16_ybf16, TileBf16AfterEpilogue)
MOE_GEMM2_BF16_YBF16(grouped_gemm2_bf16_u_ybf16, TileDownBf16Uniform)
MOE_GEMM2_FP8_YBF16(grouped_gemm2_fp8_ybf16, TileDownFp8)
#endif
MOE_GEMM2_FP8_YBF16(grouped_gemm2_fp8_n128_ybf16, TileDownFp8N128)
MOE_GEMM2_FP8_YBF16(grouped_gemm2_fp8_p32_ybf16, TileDownFp8Promote32)
MOE_GEMM2_FP8(grouped_gemm2_fp8_m128u, TileDownFp8M128Uniform, MOE_NO_CLUSTER)
MOE_GEMM2_FP8(grouped_gemm2_fp8_u, TileDownFp8Uniform, MOE_NO_CLUSTER)
#if MOE_BENCH_VARIANTS
MOE_GEMM2_FP8(grouped_gemm2_fp8_m128uu2, TileDownFp8M128UniformUnroll2, MOE_NO_CLUSTER)
#endif
MOE_GEMM2_FP8_YBF16(grouped_gemm2_fp8_u_ybf16, TileDownFp8Uniform)
// session 8: the 128-row GEMM2 tile with the layer's bf16 Y store, production where row blocks are mostly full
// (GroupedGemmConfig.rows128Gemm2). Measured and dropped (docs/kernel-notes.md v9): its K loop unrolled by 2, the early
// next-unit lookup (kPrefetch), and that with the second warpgroup two K blocks behind (kStagger).
MOE_GEMM2_FP8_YBF16(grouped_gemm2_fp8_m128u_ybf16, TileDownFp8M128Uniform)
#if MOE_BENCH_VARIANTS
using TileDownFp8M128UniformExpertChunks =  // (_x: production's static tile with balanced expert chunks, as GEMM1's _x)
        moe_sched::Tile<128, 256, 3, false, 1, 4, false, false, true, true, false, false, true, 0, 1, false, false, 0, 0, 0, false, 0, false, true, 1>;
MOE_GEMM2_FP8_YBF16(grouped_gemm2_fp8_m128ux_ybf16, TileDownFp8M128UniformExpertChunks)
MOE_GEMM2_FP8_YBF16(grouped_gemm2_fp8_m128uq_ybf16, TileDownFp8M128UniformQuarters)
MOE_GEMM2_FP8_YBF16(grouped_gemm2_fp8_m128ur_ybf16, TileDownFp8M128UniformRegA)
MOE_GEMM2_FP8_YBF16(grouped_gemm2_fp8_m128u4_ybf16, TileDownFp8M128Uniform4)
MOE_GEMM2_FP8_YBF16(grouped_gemm2_fp8_m128uy_ybf16, TileDownFp8M128UniformStagedY)
MOE_GEMM2_FP8_YBF16(grouped_gemm2_fp8_m128uw_ybf16, TileDownFp8M128UniformRoll)
// _m128ud (session 16; benchmark variant): the 128-row GEMM2 tile with units claimed at run time and handed to the
// consumers decoded by the producer (Tile::kDynamic, as GEMM1's _m128usu2d), so the consumers no longer look their
// next unit up themselves (global loads and divisions after every epilogue: ~8 % of the static tile's warp samples
// waiting on them, ncu session 16 call f)
using TileDownFp8M128UniformDynamic =
        moe_sched::Tile<128, 256, 3, false, 1, 4, false, false, false, true, false, false, true, 0, 1, false, true, 0, 0, 0, false, 0, false, true>;
MOE_GEMM2_FP8_ENTRY(grouped_gemm2_fp8_m128ud, TileDownFp8M128UniformDynamic, MOE_NO_CLUSTER, 1)
MOE_GEMM2_FP8_YBF16_ENTRY(grouped_gemm2_fp8_m128ud_ybf16, TileDownFp8M128UniformDynamic, 1)
#endif
MOE_GEMM2_BF16_YBF16_ENTRY(grouped_gemm2_bf16_d_ybf16, TileDownBf16Dynamic, 1)
MOE_GEMM2_FP8_ENTRY(grouped_gemm2_fp8_ud, TileDownFp8UniformDynamic, MOE_NO_CLUSTER, 1)
MOE_GEMM2_FP8_YBF16_ENTRY(grouped_gemm2_fp8_ud_ybf16, TileDownFp8UniformDynamic, 1)

// ---------------- GEMM1 gathering its A rows (sparkmoe.gpu.gatherRows, v6) ----------------
// _m128usu2g: the production GEMM1 tile _m128usu2 whose producer gathers each 128-row block's A rows itself from the
// activations quantized once per token (A_tokens [tokens padded to 128, K] and A_tokens_scale in the activation
// layouts of grouped_gemm.cuh, row t = token t) through token_of_slot[row] (the token of routed row `row`; only real
// rows are read), so the dispatch does not write every token k times. RR must be the experts' real rows (not null):
// padding rows are zero-filled in shared memory. sm_90a only (the portable compute_90 build traps; the engine
// refuses the setting with the reference GEMMs and on other GPUs).
// _m128usu2g = gather mode 2 (v6.1: one producer warp polls the empty barrier, no consumer proxy fence);
// _m128usu2g1 = mode 1 (v6: all producer threads poll, consumers fence), kept for the benchmark's comparison.
using TileSwiGLUFp8M128UniformStagedUnroll2Gather =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 2, false, false, 2>;
using TileSwiGLUFp8M128UniformStagedUnroll2GatherV1 =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 2, false, false, 1>;
#if MOE_HAVE_WGMMA
#define MOE_GEMM1_FP8_GATHER_BODY(TILE, COUNTER)                                                                                \
    moe_gemm::Params p{A_tokens, A_tokens_scale, W1, W1_scale, Hout, Hout_scale, nullptr,                             \
                       block_expert, num_row_blocks, (uint32_t)max_row_blocks, (uint32_t)K, (uint32_t)N,                \
                       expert_count, expert_start};                                                                    \
    p.token_of_slot = token_of_slot;                                                                                   \
    p.work_counter = COUNTER;                                                                                          \
    moe_gemm::grouped_gemm<true, TILE, true>(p);
#else
#define MOE_GEMM1_FP8_GATHER_BODY(TILE, COUNTER) __trap();
#endif
#define MOE_GEMM1_FP8_GATHER(NAME, TILE, DYN)                                                                          \
    extern "C" __global__ void MOE_FAST_BOUNDS NAME(                                                                   \
            const uint8_t* A_tokens, const float* A_tokens_scale, const int* token_of_slot, const uint8_t* W1,         \
            const float* W1_scale, uint8_t* Hout, float* Hout_scale, const int* block_expert, const int* num_row_blocks, \
            int max_row_blocks, int K, int N, const int* expert_count, const int* expert_start MOE_COUNTER_PARAM_##DYN) { \
        MOE_GEMM1_FP8_GATHER_BODY(TILE, MOE_COUNTER_ARG_##DYN)                                                         \
    }
MOE_GEMM1_FP8_GATHER(grouped_gemm1_swiglu_fp8_m128usu2g, TileSwiGLUFp8M128UniformStagedUnroll2Gather, 0)
#if MOE_BENCH_VARIANTS
MOE_GEMM1_FP8_GATHER(grouped_gemm1_swiglu_fp8_m128usu2g1, TileSwiGLUFp8M128UniformStagedUnroll2GatherV1, 0)
#endif
// _m128usu2gd (session 6, lead): _m128usu2g with its units claimed at run time (Tile::kDynamic): one more argument, the
// work-counter pair
using TileSwiGLUFp8M128UniformStagedUnroll2GatherDynamic =
        moe_sched::Tile<128, 256, 4, false, 1, 4, false, false, false, true, false, false, true, true, 2, false, true, 2>;
MOE_GEMM1_FP8_GATHER(grouped_gemm1_swiglu_fp8_m128usu2gd, TileSwiGLUFp8M128UniformStagedUnroll2GatherDynamic, 1)

// grouped_gemm1_swiglu_bf16_g (session 6, NOT YET RUN ON A GPU; no engine wiring): the production BF16 GEMM1 tile with
// the gathering producer (mode 2) over the tokens converted to bf16 once (A_tokens, activation layout, row t = token t).
// Arguments: (A_tokens, token_of_slot, W1, Hout, block_expert, num_row_blocks, max_row_blocks, K, N, RR), RR not null.
#if MOE_BENCH_VARIANTS
using TileSwiGLUBf16Gather = moe_sched::Tile<128, 256, 4, false, 1, 4, true, false, false, false, false, false, false, false, 1, false, false, 2>;
extern "C" __global__ void MOE_FAST_BOUNDS grouped_gemm1_swiglu_bf16_g(
        const __nv_bfloat16* A_tokens, const int* token_of_slot, const __nv_bfloat16* W1, __nv_bfloat16* Hout,
        const int* block_expert, const int* num_row_blocks, int max_row_blocks, int K, int N, const int* expert_count,
        const int* expert_start) {
#if MOE_HAVE_WGMMA
    moe_gemm::Params p{(const uint8_t*)A_tokens, nullptr, (const uint8_t*)W1, nullptr, Hout, nullptr, nullptr,
                       block_expert, num_row_blocks, (uint32_t)max_row_blocks, (uint32_t)K, (uint32_t)N,
                       expert_count, expert_start};
    p.token_of_slot = token_of_slot;
    moe_gemm::grouped_gemm<false, TileSwiGLUBf16Gather, true>(p);
#else
    __trap();
#endif
}
#endif  // MOE_BENCH_VARIANTS
