// grouped_gemm_kernel.cuh: the fast grouped GEMM (sm_90a), one template for the four entry points.
//
// Structure: a persistent grid strides over work units (BLOCK_M rows x BLOCK_N packed weight rows, order in
// grouped_gemm_schedule.cuh); the number of units comes from the device-side row-block count, so nothing is
// synchronized with the host. Per CTA: warpgroup 2 is the producer (one thread issues 1-D bulk copies of the
// pre-swizzled A / B tiles and, FP8, the A scales into a STAGES-deep ring, completing on "full" mbarriers);
// warpgroups 0 and 1 consume (wgmma from shared memory with SW128 descriptors, then release the stage on its "empty"
// mbarrier). Registers are moved from the producer to the consumers with setmaxnreg.
// FP8: each 128-wide K block is multiplied into a fresh accumulator, then promoted into the fp32 result with
// scale_a(row, kb) * scale_b(weight 128-row block, kb) (DeepSeek's recipe; e4m3 wgmma accumulates with reduced
// precision: promoting every 128 bounds it, measured 1.3e-4 relative vs exact, docs/kernel-notes.md). Two
// accumulator sets let a warpgroup's wgmmas for K block kb+1 run while it promotes kb (64-row tiles); the 128-row
// "halves" tile (kHalves) instead gives each warpgroup 64 whole rows, run as two 128-wide wgmma halves into one
// accumulator, promoted in turn (no overlap inside a warpgroup; 40 % less data moved per FLOP). Optional (kClusterM = 2):
// 2-CTA clusters sharing the weight tile by multicast (slower so far; benchmark variant only): the 64-row tile's two
// halves of a row block, or (Tile::kPairB, v8) pair units of two 128-row blocks of one expert.
// Epilogues, straight from registers: GEMM1 SwiGLU (gate and up are interleaved per 8 packed rows, so each thread
// holds g and u of the same output column) writing bf16, or e4m3 + per-row-per-128 scales (the two warpgroups
// own the two 64-column halves of the 128 output columns and exchange row maxima through shared memory; in the
// halves tile one warpgroup holds all 128 columns of its rows and needs no exchange; with kStagedStore its 64 x 128
// e4m3 outputs go through shared memory and one bulk store); GEMM2 multiplies by the row's routing weight and writes
// fp32 (or, p.y_bf16, bf16). kUniform (v5): all descriptor / stage arithmetic from warp-uniform values, so it stays
// in uniform registers.
#pragma once
#include <cuda_bf16.h>
#include <type_traits>
#include "grouped_gemm.cuh"
#include "grouped_gemm_sm90.cuh"
#include "grouped_gemm_schedule.cuh"
#include "grouped_gemm_wgmma.cuh"

namespace moe_gemm {

struct Params {
    const uint8_t* A;          // activations, layout of grouped_gemm.cuh
    const float* A_scale;      // FP8 only
    const uint8_t* W;          // packed weights
    const float* W_scale;      // FP8 only
    void* out;                 // GEMM1: Hout (activation layout); GEMM2: Y fp32 row-major
    float* out_scale;          // GEMM1 FP8: Hout_scale
    const float* row_weight;   // GEMM2
    const int* block_expert;
    const int* num_row_blocks;
    uint32_t max_row_blocks;
    uint32_t K;                // reduction length (elements)
    uint32_t N;                // output columns (GEMM1: I; GEMM2: H)
    // Padding skip (optional): expert e's real rows are expert_start[e] .. expert_start[e] + expert_count[e] - 1
    // (the dispatch's own arrays; expert_start == nullptr: every expert starts at row 0, i.e. a single group like
    // the shared expert). 64 rows that hold only padding are then not computed (their outputs stay unwritten).
    // expert_count == nullptr: every row of a used block is computed.
    const int* expert_count;
    const int* expert_start;
    // GEMM2: Y stored as bf16 (nearest even) instead of fp32, same row-major layout (the *_ybf16 entry points).
    bool y_bf16 = false;
    // Tile::kDynamic: [0] the next unit to claim (minus gridDim.x), [1] CTAs done. Zero at launch; the last CTA to
    // finish zeroes both again, so consecutive launches on one stream can share a pair (one pair per stream).
    uint32_t* work_counter = nullptr;
    // Tile::kGatherA (GEMM1 FP8): A / A_scale hold the activations quantized once per token (row t = token t, layout
    // above) and token_of_slot[row] is the token of routed row `row` (read for real rows only: padding rows, past
    // the expert's count, are zero-filled). Needs expert_count and expert_start.
    const int* token_of_slot = nullptr;
};

template <bool kFP8, uint32_t WG_N>
struct Mma;
template <>
struct Mma<false, 128> {
    __device__ __forceinline__ static void run(float (&d)[64], uint64_t a, uint64_t b, uint32_t sd) { wgmma_m64n128k16_bf16(d, a, b, sd); }
};
template <>
struct Mma<false, 256> {
    __device__ __forceinline__ static void run(float (&d)[128], uint64_t a, uint64_t b, uint32_t sd) { wgmma_m64n256k16_bf16(d, a, b, sd); }
};
template <>
struct Mma<true, 192> {
    __device__ __forceinline__ static void run(float (&d)[96], uint64_t a, uint64_t b, uint32_t sd) { wgmma_m64n192k32_e4m3(d, a, b, sd); }
};
template <>
struct Mma<true, 64> {
    __device__ __forceinline__ static void run(float (&d)[32], uint64_t a, uint64_t b, uint32_t sd) { wgmma_m64n64k32_e4m3(d, a, b, sd); }
};
template <>
struct Mma<true, 128> {
    __device__ __forceinline__ static void run(float (&d)[64], uint64_t a, uint64_t b, uint32_t sd) { wgmma_m64n128k32_e4m3(d, a, b, sd); }
};

// The array the epilogue reads: the promoted result (FP8) or the wgmma accumulator (BF16); a compile-time choice,
// so the register arrays stay in registers.
template <bool kPickFirst, class X, class Y>
__device__ __forceinline__ auto& pick(X& x, Y& y) {
    if constexpr (kPickFirst) return x; else return y;
}

template <bool kFP8, class T, bool kSwiGLU>
__device__ __forceinline__ void grouped_gemm(const Params& p) {
    static_assert(!(kFP8 && kSwiGLU) || ((T::kSplitN || T::kHalves) && T::BLOCK_N == 256) || T::kPairN || T::kWide,
                  "FP8 GEMM1 re-quantizes per 128 output columns: one CTA must own exactly 128 (256 packed rows)");
    static_assert(!T::kHalves || kFP8, "the halves tile is FP8 only");
    static_assert(!T::kPairN || (kFP8 && kSwiGLU), "N pairs: FP8 GEMM1");
    static_assert(!T::kWide || (kFP8 && kSwiGLU), "the wide tile: FP8 GEMM1 (fp32 SwiGLU output)");
    static_assert(!T::kStagedY || (!kSwiGLU && T::WG_N == 256), "staged bf16 Y: GEMM2's halves tile");
    static_assert(!T::kStagger || T::kHalves || !kSwiGLU, "split-N GEMM1 exchanges row maxima per unit: it cannot stagger");
    constexpr uint32_t ES = kFP8 ? 1 : 2;               // element bytes
    constexpr uint32_t K_STEPS = moe_sched::kSlabBytes / 32;  // wgmma K steps of 32 bytes per stage
    constexpr uint32_t NACC = T::MMA_N / 2;  // accumulator registers of one wgmma
    constexpr uint32_t NFIN = T::WG_N / 2;   // result registers of a warpgroup (FP8 promoted result; BF16: = NACC)

    extern __shared__ uint8_t smem_raw[];
    const uint32_t raw = sm90::smem_addr(smem_raw);
    // kUniform: broadcast so that everything derived from it (stage, barrier, descriptor addresses) is warp-uniform
    const uint32_t base = T::kUniform ? __shfl_sync(0xffffffffu, (raw + 1023u) & ~1023u, 0) : (raw + 1023u) & ~1023u;
    uint8_t* smem = smem_raw + (base - raw);
    const uint32_t a_smem = base;
    const uint32_t b_smem = a_smem + T::STAGES * T::A_STAGE_BYTES;
    const uint32_t s_smem = b_smem + T::STAGES * T::B_STAGE_BYTES;
    const uint32_t bar_smem = s_smem + T::STAGES * T::SCALE_STAGE_BYTES;
    float* exchange = reinterpret_cast<float*>(smem + (bar_smem - base) + T::BARRIER_BYTES);
    // kPairN: the exchange buffer's shared address (the partner writes its row maxima there) and its mbarrier
    const uint32_t exchange_smem = bar_smem + T::BARRIER_BYTES;
    const uint32_t pair_bar = exchange_smem + T::EXCHANGE_FLOAT_BYTES;
    // kStagedStore: the two warpgroups' output staging buffers (16-byte aligned: every region before is)
    const uint32_t out_smem = bar_smem + T::BARRIER_BYTES + T::EXCHANGE_BYTES + T::LIVE_TABLE_BYTES;
    // kDynamic: per stage that starts a unit, the unit decoded (index - total_units: no more -, tile, expert, real
    // rows), written by the producer before it arms the stage's full barrier, read by the consumers after waiting on it
    volatile uint32_t* unit_slots = reinterpret_cast<volatile uint32_t*>(smem + (out_smem - base) + T::OUT_STAGE_BYTES);
    auto full_bar = [&](uint32_t s) { return bar_smem + s * 8; };
    // kPairB mailbox (in the unit-slot area past STAGES <= 8 slots): words 64 + 8 i = slot i (rank 1's copy is read),
    // mbarriers at bytes 384 + 8 j: j = 0, 1 "slot i full" (rank 1), j = 2, 3 "slot i free" (rank 0)
    const uint32_t unit_slots_smem = out_smem + T::OUT_STAGE_BYTES;
    auto mail_word = [&](uint32_t i) { return unit_slots_smem + (64 + 8 * i) * 4; };
    auto mail_bar = [&](uint32_t j) { return unit_slots_smem + 384 + 8 * j; };
    auto empty_bar = [&](uint32_t s) { return bar_smem + (T::STAGES + s) * 8; };

    const uint32_t K = p.K;
    const uint32_t k_blocks = K * ES / moe_sched::kSlabBytes;
    const uint32_t w_rows = kSwiGLU ? 2 * p.N : p.N;
    if ((T::kWide ? w_rows % 256 != 0 : w_rows % T::BLOCK_N != 0) || K % 128 != 0) __trap();  // GroupedGemmConfig never launches these
    if (T::kStagedY && !p.y_bf16) __trap();                    // only the *_ybf16 entry points use the staged Y tile
    const uint32_t n_tiles = T::kWide ? (w_rows + T::BLOCK_N - 1) / T::BLOCK_N : w_rows / T::BLOCK_N;  // kWide: ragged last tile
    const uint32_t row_blocks = min((uint32_t)*p.num_row_blocks, p.max_row_blocks);
    // A cluster works as one: its units are (row block, N tile) and CTA `rank` takes M unit 2 * row block + rank.
    // (kPairB: the M units are the 128-row blocks themselves; a pair unit names the CTA's own row block)
    constexpr uint32_t kUnitsPerRowBlock = T::kPairB || T::kPairN ? 1u : MOE_GEMM_BLOCK_M / T::BLOCK_M / T::kClusterM;
    const uint32_t m_units = row_blocks * kUnitsPerRowBlock;
    constexpr uint32_t kGroupUnits = moe_sched::kGroupRowBlocks * kUnitsPerRowBlock;
    const uint32_t rank = T::kClusterM > 1 ? sm90::cluster_cta_rank() : 0;
    const uint32_t first_unit = blockIdx.x / T::kClusterM, unit_stride = gridDim.x / T::kClusterM;
    auto cta_m_unit = [&](uint32_t unit_m) { return T::kPairB || T::kPairN ? unit_m : unit_m * T::kClusterM + rank; };

    // Padding skip (p.expert_count given). 64-row tiles: the work units are numbered over the LIVE 64-row units only
    // (those holding a real row), in the order of moe_sched::unit_at restricted to them, so the CTAs running at one
    // time still share weight tiles in L2 (skipping dead units in place let the CTAs drift apart: 30 % slower).
    // Every CTA builds the table at its start: per group of kGroupRowBlocks row blocks, a mask of its live 64-row
    // units and the number of live units before it. 128-row tiles: every unit is live; the second warpgroup idles
    // when its 64 rows are all padding.
    const bool skip_padding = p.expert_count != nullptr;
    const uint32_t groups = (row_blocks + moe_sched::kGroupRowBlocks - 1) / moe_sched::kGroupRowBlocks;
    const bool live_table = T::kLiveTable && skip_padding && groups <= T::kLiveTableGroups;
    uint32_t* live_before = reinterpret_cast<uint32_t*>(smem + (bar_smem - base) + T::BARRIER_BYTES + T::EXCHANGE_BYTES);
    uint16_t* live_mask = reinterpret_cast<uint16_t*>(live_before + T::kLiveTableGroups + 1);
    // Real rows of row block rb (expert e): its expert's rows from expert_start[e] (0 when not given).
    auto block_fill = [&](uint32_t rb, uint32_t e) -> int {
        const int start = p.expert_start != nullptr ? p.expert_start[e] : 0;
        return p.expert_count[e] - ((int)(rb * MOE_GEMM_BLOCK_M) - start);
    };
    if constexpr (T::kLiveTable) {
        if (live_table) {
            // one row block per thread (all loads in flight at once: a serial loop per group cost tens of us with
            // a cold L2); the 8 lanes of a group OR their two bits together
            static_assert(moe_sched::kGroupRowBlocks == 8, "a group is 8 lanes of a warp");
            const uint32_t lane = threadIdx.x % 32;
            for (uint32_t rb0 = threadIdx.x - lane; rb0 < row_blocks; rb0 += moe_sched::kThreads) {
                const uint32_t rb = rb0 + lane;
                uint32_t bits = 0;
                if (rb < row_blocks) {
                    const int fill = block_fill(rb, (uint32_t)p.block_expert[rb]);
                    bits = ((fill > 0 ? 1u : 0u) | (fill > 64 ? 2u : 0u)) << (2 * (lane % 8));
                }
                bits |= __shfl_xor_sync(0xffffffffu, bits, 1);
                bits |= __shfl_xor_sync(0xffffffffu, bits, 2);
                bits |= __shfl_xor_sync(0xffffffffu, bits, 4);
                if (lane % 8 == 0 && rb < row_blocks) live_mask[rb / 8] = (uint16_t)bits;
            }
            __syncthreads();
            // exclusive scan of the live counts over the groups: each thread a contiguous chunk, then over threads
            const uint32_t chunk = (groups + moe_sched::kThreads - 1) / moe_sched::kThreads;
            const uint32_t g0 = min(groups, threadIdx.x * chunk), g1 = min(groups, g0 + chunk);
            uint32_t mine = 0;
            for (uint32_t g = g0; g < g1; ++g) mine += __popc(live_mask[g]);
            const uint32_t warp = threadIdx.x / 32;
            uint32_t incl = mine;
#pragma unroll
            for (uint32_t o = 1; o < 32; o <<= 1) {
                const uint32_t v = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += v;
            }
            uint32_t* warp_sums = reinterpret_cast<uint32_t*>(exchange);  // free until the first epilogue
            if (lane == 31) warp_sums[warp] = incl;
            __syncthreads();
            uint32_t before = incl - mine;
            for (uint32_t w = 0; w < warp; ++w) before += warp_sums[w];
            for (uint32_t g = g0; g < g1; ++g) {
                live_before[g] = before;
                before += __popc(live_mask[g]);
            }
            if (g0 < g1 && g1 == groups) live_before[groups] = before;
        }
    }
    // Without the table (no counts given, 128-row or cluster tiles, or more groups than it holds) every unit is run.
    if constexpr (T::kClusterM > 1) sm90::cluster_sync(); else __syncthreads();
    // kPairB: pair units, each covering two tile units (n_tiles even: GroupedGemmConfig never launches it otherwise)
    if (T::kPairB && n_tiles % 2 != 0) __trap();
    if (T::kPairN && n_tiles % 2 != 0) __trap();  // (2 N / 128 is even whenever N % 128 == 0)
    const uint32_t total_units = (live_table ? (groups > 0 ? live_before[groups] : 0u) : m_units) * n_tiles / (T::kPairB || T::kPairN ? 2u : 1u);

    // A work unit to run: its index in the (live) order, its tile, expert and the real rows of its 128-row block.
    struct Live {
        uint32_t u, m_unit, n_tile, e;
        int fill;
        bool shared_b = false;  // kPairB: the partner CTA runs the same expert and N tile (B tile multicast)
    };
    uint32_t group_cursor = 0;  // live table: group of the last unit looked up (units are looked up in rising order)
    // Unit u of this launch's order (u.u == total_units: none left). check: trap on a layout that breaks the dispatch's
    // invariants - in the producer's lookups, and in the consumers' only where they look up just their first unit
    // (kDynamic): the consumers of the static tiles look up the same units as their producer (and wait for its copies
    // of them), and a trap inside their wgmma window made ptxas spill ~1 KB in the static _m128usu2 with Tile kGroupOrder 1
    // (the variant _m128usu2x, session 18).
    auto find_live = [&](uint32_t u, bool check = true) -> Live {
        if (u >= total_units) return Live{total_units, 0, 0, 0, 0};
        uint32_t m_unit, n_tile;
        if constexpr (T::kPairB) {
            // pair u covers tile units 2u and 2u + 1 of the expert-ordered space (expert e: [s * n_tiles, (s + R) * n_tiles)
            // for its row blocks s .. s + R - 1; R * n_tiles is even, so no pair spans two experts). Without the
            // experts' counts every row block is its own group (pairs of N tiles only: correct, no sharing); without
            // expert_start all row blocks are one group (as the dynamic 128-row order).
            const uint32_t t2 = 2 * u;
            uint32_t s = t2 / n_tiles, rbs = 1, e = (uint32_t)p.block_expert[t2 / n_tiles];
            if (skip_padding) {
                s = 0;
                rbs = m_units;
                if (p.expert_start != nullptr) {
                    s = (uint32_t)p.expert_start[e] / MOE_GEMM_BLOCK_M;
                    rbs = ((uint32_t)p.expert_count[e] + MOE_GEMM_BLOCK_M - 1) / MOE_GEMM_BLOCK_M;
                }
            }
            if (rbs == 0 || s * n_tiles > t2 || t2 >= (s + rbs) * n_tiles || s + rbs > m_units) __trap();
            const uint32_t r = u - s * n_tiles / 2;  // pair index inside the expert
            const uint32_t full = rbs / 2;           // pairs of row blocks
            bool shared_b;
            if (r < full * n_tiles) {
                // pairs of row blocks walked in groups of <= kGroupRowBlocks / 2 pairs, M first (L2 reuse as the 128-row
                // dynamic order); rank takes the pair's row block `rank`
                constexpr uint32_t kGroupPairs = moe_sched::kGroupRowBlocks / 2;
                const uint32_t chunk = r / (kGroupPairs * n_tiles), r2 = r - chunk * kGroupPairs * n_tiles;
                const uint32_t in_group = min(kGroupPairs, full - chunk * kGroupPairs);
                m_unit = s + 2 * (chunk * kGroupPairs + r2 % in_group) + rank;
                n_tile = r2 / in_group;
                shared_b = true;
            } else {
                // the expert's last (odd) row block on N tiles 2j and 2j + 1
                m_unit = s + rbs - 1;
                n_tile = 2 * (r - full * n_tiles) + rank;
                shared_b = false;
            }
            const int fill = skip_padding ? block_fill(m_unit, e) : MOE_GEMM_BLOCK_M;
            Live x{u, m_unit, n_tile, e, fill};
            x.shared_b = shared_b;
            return x;
        } else if (live_table) {
            while (live_before[group_cursor + 1] * n_tiles <= u) ++group_cursor;
            const uint32_t g = group_cursor;
            const uint32_t live = live_before[g + 1] - live_before[g];
            const uint32_t r = u - live_before[g] * n_tiles;
            const uint32_t idx = r % live;
            n_tile = r / live;
            uint32_t mask = live_mask[g];
            for (uint32_t i = 0; i < idx; ++i) mask &= mask - 1;  // drop the idx lowest live units
            m_unit = g * kGroupUnits + (__ffs(mask) - 1);
        } else if ((T::kDynamic || T::kGroupOrder == 1) && T::BLOCK_M == MOE_GEMM_BLOCK_M && T::kClusterM == 1 && skip_padding) {
            // groups by expert (Tile::kDynamic, and the static tiles of Tile::kGroupOrder 1 - session 18's variants):
            // expert e's units are [s * n_tiles, (s + R) * n_tiles) for its row blocks s .. s + R - 1, walked in chunks of
            // row blocks, M first (no expert_start: one group of rows, e.g. the shared expert)
            uint32_t s = 0, rbs = m_units;
            if (p.expert_start != nullptr) {
                const uint32_t ge = (uint32_t)p.block_expert[u / n_tiles];
                s = (uint32_t)p.expert_start[ge] / MOE_GEMM_BLOCK_M;
                rbs = ((uint32_t)p.expert_count[ge] + MOE_GEMM_BLOCK_M - 1) / MOE_GEMM_BLOCK_M;
            }
            const uint32_t r = u - s * n_tiles;
            // the layout's invariants (dispatch): the expert's row blocks hold u and lie within the used row blocks
            if (check && (rbs == 0 || s * n_tiles > u || r >= rbs * n_tiles || s + rbs > m_units)) __trap();
            if constexpr (T::kGroupOrder == 0) {  // chunks of kGroupUnits, the last one short
                const uint32_t chunk = r / (kGroupUnits * n_tiles), r2 = r - chunk * kGroupUnits * n_tiles;
                const uint32_t in_group = min(kGroupUnits, rbs - chunk * kGroupUnits);
                m_unit = s + chunk * kGroupUnits + r2 % in_group;
                n_tile = r2 / in_group;
            } else {
                const moe_sched::WorkUnit w = moe_sched::expert_unit_at(r, rbs, n_tiles);
                m_unit = s + w.m_unit;
                n_tile = w.n_tile;
            }
        } else if constexpr (T::kPairN) {
            // pair unit u = (row block, re-quantization block j): this CTA's N tile is 2 j + rank
            const moe_sched::WorkUnit w = moe_sched::unit_at(u, m_units, n_tiles / 2, kGroupUnits);
            m_unit = w.m_unit;
            n_tile = 2 * w.n_tile + rank;
        } else {
            const moe_sched::WorkUnit w = moe_sched::unit_at(u, m_units, n_tiles, kGroupUnits);
            m_unit = w.m_unit;
            n_tile = w.n_tile;
        }
        const uint32_t rb = cta_m_unit(m_unit) * T::BLOCK_M / MOE_GEMM_BLOCK_M;
        const uint32_t e = (uint32_t)p.block_expert[rb];
        const int fill = skip_padding && !T::kLiveTable ? block_fill(rb, e) : MOE_GEMM_BLOCK_M;
        return Live{u, m_unit, n_tile, e, fill};
    };

    if (threadIdx.x == 0) {
        for (uint32_t s = 0; s < T::STAGES; ++s) {
            // gather: + one cp.async arrival per producer thread (Tile::kGatherA)
            sm90::mbar_init(full_bar(s), T::kGatherA ? 1 + 128 : 1);
            sm90::mbar_init(empty_bar(s), T::kClusterM * moe_sched::kConsumerThreads / 32);
        }
        if constexpr (T::kPairB) {
            for (uint32_t i = 0; i < 4; ++i) sm90::mbar_init(mail_bar(i), 1);
        }
        if constexpr (T::kPairN) sm90::mbar_init(pair_bar, moe_sched::kConsumerThreads / 4);  // the partner's quad leaders
        sm90::fence_barrier_init();
    }
    // The peer CTA multicasts into our stages and arrives on our barriers: they must be initialized cluster-wide.
    if constexpr (T::kClusterM > 1) sm90::cluster_sync(); else __syncthreads();

    // kDynamic, the claiming thread once no unit is left: every claim of this CTA is made, so the last CTA here resets
    // the counter pair for the next launch on the stream
    auto finish_claims = [&]() {
        __threadfence();
        if (atomicAdd(p.work_counter + 1, 1u) == gridDim.x / (T::kPairB ? 2u : 1u) - 1) {  // kPairB: rank 0 claims
            atomicExch(p.work_counter, 0u);
            atomicExch(p.work_counter + 1, 0u);
        }
    };
    // kDynamic: the producer writes the unit a stage starts into its slot before arming the stage's full barrier (the
    // arrive releases it; the consumers' wait acquires it)
    auto publish_unit = [&](uint32_t st, const Live& n) {
        volatile uint32_t* slot = unit_slots + st * T::UNIT_SLOT_WORDS;
        slot[0] = n.u;
        slot[1] = n.m_unit;
        slot[2] = n.n_tile;
        slot[3] = n.e;
        slot[4] = (uint32_t)n.fill;
    };
    // kPairB, the producer thread: the pair to run next. Rank 0 claims it and hands the index to rank 1 through the
    // mailbox (2 slots; slot i's "full" barrier lives in rank 1, its "free" barrier in rank 0); rank 1 waits for it.
    // Both producers then decode the same index, so both CTAs run the same units (and the final "none" unit) in step.
    uint32_t handoffs = 0;
    auto pair_next_claim = [&]() -> uint32_t {
        const uint32_t i = handoffs & 1u, par = (handoffs >> 1) & 1u;
        ++handoffs;
        uint32_t idx;
        if (rank == 0) {
            idx = unit_stride + atomicAdd(p.work_counter, 1u);
            sm90::mbar_wait_acquire_cluster(mail_bar(2 + i), par ^ 1u);  // rank 1 has read the slot's previous index
            sm90::st_cluster_u32(mail_word(i), 1, idx);
            sm90::mbar_arrive_release_cluster(mail_bar(i), 1);
        } else {
            sm90::mbar_wait_acquire_cluster(mail_bar(i), par);
            idx = unit_slots[64 + 8 * i];
            sm90::mbar_arrive_release_cluster(mail_bar(2 + i), 0);
        }
        return idx;
    };
    const uint32_t wg = T::kUniform ? __shfl_sync(0xffffffffu, threadIdx.x / 128, 0) : threadIdx.x / 128;
    if (wg == 2) {
        // ---------------- producer ----------------
        sm90::setmaxnreg_dec<moe_sched::kProducerRegisters>();
        if constexpr (T::kGatherA) {
            static_assert(kSwiGLU && T::BLOCK_M == 128, "gather: a GEMM1 128-row tile");
            static_assert(kFP8 || T::kGather == 2, "BF16 gather: mode 2 only (its consumer loop has no proxy fence)");
            if (!skip_padding || p.token_of_slot == nullptr) __trap();  // GroupedGemm always passes both
            static_assert(!T::kDynamic || (T::kGather == 2 && T::STAGES < 16), "dynamic gather: mode 2, a spare unit slot");
            if (T::kDynamic && p.work_counter == nullptr) __trap();
            // kDynamic: thread 0 claims each next unit and hands it to the other producer threads in this word
            volatile uint32_t* claim = unit_slots + T::STAGES * T::UNIT_SLOT_WORDS;
            // All 128 producer threads. Thread q copies the 16-byte chunk q % 8 of rows q / 8 + 16 i (i < 8): the 8
            // threads of a row read its 128 bytes of a K slab (one line), and the row's scale (row q) with 4 bytes.
            // Source chunk of token t: position (c ^ t % 8) of its slab row; destination: (c ^ r % 8) of row r.
            const uint32_t q = threadIdx.x - 256, c = q % 8, r_sub = q / 8;
            const uint32_t dst0 = a_smem + r_sub * 128 + ((c ^ (r_sub & 7u)) << 4);  // + stage + 2048 i (r % 8 = r_sub % 8)
            const uint32_t sdst0 = s_smem + q * 4;
            uint32_t stage = 0, phase = 0;
            for (Live n = find_live(first_unit); n.u < total_units;) {
                const uint32_t row0 = n.m_unit * MOE_GEMM_BLOCK_M;
                const uint8_t* b_src = p.W + (uint64_t)n.e * w_rows * K * ES + (uint64_t)n.n_tile * T::BLOCK_N * moe_sched::kSlabBytes;
                // Byte offset of this thread's chunk of row r_sub + 16 i in slab 0 (32 bits: the host keeps the token
                // buffer below 4 GiB), or ~0u for a padding row; its scale's float offset for K block 0.
                uint32_t src_off[8];
#pragma unroll
                for (uint32_t i = 0; i < 8; ++i) {
                    const int r = (int)(r_sub + 16 * i);
                    const uint32_t t = r < n.fill ? (uint32_t)p.token_of_slot[row0 + r] : ~0u;
                    src_off[i] = t == ~0u ? ~0u : (t >> 7) * (128u * K * ES) + (t & 127u) * 128u + (((c ^ t) & 7u) << 4);
                }
                const uint32_t ts = kFP8 && (int)q < n.fill ? (uint32_t)p.token_of_slot[row0 + q] : ~0u;
                const uint32_t s_off = ts == ~0u ? ~0u : (ts >> 7) * K + (ts & 127u);  // (t/128) * (K/128) * 128 + t % 128
                for (uint32_t kb = 0; kb < k_blocks; ++kb) {
                    if constexpr (T::kGather == 1) {
                        sm90::mbar_wait(empty_bar(stage), phase ^ 1);
                    } else {
                        if (q < 32) sm90::mbar_wait(empty_bar(stage), phase ^ 1);
                        sm90::named_barrier_sync(5, 128);  // the other producer warps sleep here meanwhile
                    }
                    if (q == 0) {
                        if (T::kDynamic && kb == 0) publish_unit(stage, n);  // made visible by the arrive below
                        sm90::mbar_arrive_expect_tx(full_bar(stage), T::B_STAGE_BYTES);
                        sm90::bulk_copy_g2s(b_smem + stage * T::B_STAGE_BYTES, b_src + (uint64_t)kb * w_rows * moe_sched::kSlabBytes,
                                            T::B_STAGE_BYTES, full_bar(stage));
                    }
                    const uint32_t dst = dst0 + stage * T::A_STAGE_BYTES;
#pragma unroll
                    for (uint32_t i = 0; i < 8; ++i) {
                        const bool real = src_off[i] != ~0u;
                        sm90::cp_async16(dst + i * 2048, p.A + (real ? src_off[i] + kb * 16384u : 0u), real ? 16u : 0u);
                    }
                    if constexpr (kFP8) {
                        const bool sreal = s_off != ~0u;
                        sm90::cp_async4(sdst0 + stage * T::SCALE_STAGE_BYTES, p.A_scale + (sreal ? s_off + kb * 128u : 0u), sreal ? 4u : 0u);
                    }
                    sm90::cp_async_mbar_arrive_noinc(full_bar(stage));
                    stage = stage + 1 == T::STAGES ? 0 : stage + 1;
                    phase ^= stage == 0;
                }
                if constexpr (T::kDynamic) {
                    if (q == 0) *claim = unit_stride + atomicAdd(p.work_counter, 1u);
                    sm90::named_barrier_sync(6, 128);
                    n = find_live(*claim);  // read before the next stage's barrier 5, so before thread 0 rewrites it
                } else {
                    n = find_live(n.u + unit_stride);
                }
            }
            if constexpr (T::kDynamic) {
                // no more units: an empty stage whose id says so ends the consumers' loop; its full barrier counts
                // 1 + 128 arrivals (thread 0's, then one per producer thread), no bytes
                if (q < 32) sm90::mbar_wait(empty_bar(stage), phase ^ 1);
                sm90::named_barrier_sync(5, 128);
                if (q == 0) {
                    unit_slots[stage * T::UNIT_SLOT_WORDS] = total_units;
                    sm90::mbar_arrive(full_bar(stage));
                }
                sm90::mbar_arrive(full_bar(stage));
                if (q == 0) finish_claims();
            }
        } else if (threadIdx.x == 256) {
            uint32_t stage = 0, phase = 0;
            if (T::kDynamic && p.work_counter == nullptr) __trap();  // GroupedGemm always passes a counter pair to these
            for (Live n = find_live(first_unit); n.u < total_units;) {
                Live after{};
                if constexpr (T::kPrefetch) after = find_live(n.u + unit_stride);  // its loads overlap the copies below
                const moe_sched::WorkUnit w{n.m_unit, n.n_tile};
                const uint32_t row0 = cta_m_unit(w.m_unit) * T::BLOCK_M, rb = row0 / MOE_GEMM_BLOCK_M;
                const uint32_t e = n.e;
                const uint8_t* a_src = p.A + (uint64_t)rb * MOE_GEMM_BLOCK_M * K * ES + (row0 % MOE_GEMM_BLOCK_M) * moe_sched::kSlabBytes;
                const uint8_t* b_src = p.W + (uint64_t)e * w_rows * K * ES + (uint64_t)w.n_tile * T::BLOCK_N * moe_sched::kSlabBytes;
                const float* s_src = kFP8 ? p.A_scale + (uint64_t)rb * k_blocks * 128 + row0 % MOE_GEMM_BLOCK_M : nullptr;
                for (uint32_t kb = 0; kb < k_blocks; ++kb) {
                    sm90::mbar_wait(empty_bar(stage), phase ^ 1);
                    if (T::kDynamic && kb == 0) publish_unit(stage, n);  // made visible by the arrive below
                    const uint32_t bytes = T::A_STAGE_BYTES + T::B_STAGE_BYTES + (kFP8 ? T::BLOCK_M * 4 : 0);
                    sm90::mbar_arrive_expect_tx(full_bar(stage), bytes);
                    if constexpr (T::kPairN) {
                        // one 64-row half of the shared A tile for both CTAs, this CTA's own B tile
                        constexpr uint32_t half = T::A_STAGE_BYTES / 2;
                        sm90::bulk_copy_g2s_multicast(a_smem + stage * T::A_STAGE_BYTES + rank * half,
                                                      a_src + (uint64_t)kb * MOE_GEMM_BLOCK_M * moe_sched::kSlabBytes + rank * half,
                                                      half, full_bar(stage), (uint16_t)0x3);
                    } else {
                        sm90::bulk_copy_g2s(a_smem + stage * T::A_STAGE_BYTES, a_src + (uint64_t)kb * MOE_GEMM_BLOCK_M * moe_sched::kSlabBytes,
                                            T::A_STAGE_BYTES, full_bar(stage));
                    }
                    if (T::kClusterM > 1 && !T::kPairN && (!T::kPairB || (T::kPairMulticast && n.shared_b))) {
                        constexpr uint32_t half = T::B_STAGE_BYTES / 2;
                        sm90::bulk_copy_g2s_multicast(b_smem + stage * T::B_STAGE_BYTES + rank * half,
                                                      b_src + (uint64_t)kb * w_rows * moe_sched::kSlabBytes + rank * half,
                                                      half, full_bar(stage), (uint16_t)0x3);
                    } else {
                        sm90::bulk_copy_g2s(b_smem + stage * T::B_STAGE_BYTES, b_src + (uint64_t)kb * w_rows * moe_sched::kSlabBytes,
                                            T::B_STAGE_BYTES, full_bar(stage));
                    }
                    if constexpr (kFP8) {
                        sm90::bulk_copy_g2s(s_smem + stage * T::SCALE_STAGE_BYTES, s_src + kb * 128, T::BLOCK_M * 4, full_bar(stage));
                    }
                    stage = stage + 1 == T::STAGES ? 0 : stage + 1;
                    phase ^= stage == 0;
                }
                if constexpr (T::kPairB) {
                    after = find_live(pair_next_claim());
                } else if constexpr (T::kStrideHandoff) {
                    after = find_live(n.u + unit_stride);
                } else if constexpr (T::kDynamic) {
                    after = find_live(unit_stride + atomicAdd(p.work_counter, 1u));
                } else if constexpr (!T::kPrefetch) {
                    after = find_live(n.u + unit_stride);
                }
                n = after;
            }
            if constexpr (T::kDynamic) {
                // no more units: an empty stage whose id says so ends the consumers' loop
                sm90::mbar_wait(empty_bar(stage), phase ^ 1);
                unit_slots[stage * T::UNIT_SLOT_WORDS] = total_units;
                sm90::mbar_arrive(full_bar(stage));
                if (!T::kStrideHandoff && (!T::kPairB || rank == 0)) finish_claims();
            }
        }
    } else {
    // ---------------- consumers ----------------
    sm90::setmaxnreg_inc<moe_sched::kConsumerRegisters>();
    const uint32_t lane = threadIdx.x % 32, warp_in_wg = (threadIdx.x / 32) % 4;
    const uint32_t m_off = T::kSplitN ? 0 : wg * 64;
    const uint32_t n_off = T::kSplitN ? wg * T::WG_N : 0;
    const uint32_t r_local = m_off + warp_in_wg * 16 + lane / 4;  // this thread's rows: r_local and r_local + 8
    uint32_t r_unit = r_local;  // the rows of the current unit (kSplitSpill: a split unit's rows are 0..63 for both)
    const uint64_t a_desc0 = sm90::sw128_desc(a_smem + m_off * moe_sched::kSlabBytes);
    const uint64_t b_desc0 = sm90::sw128_desc(b_smem + n_off * moe_sched::kSlabBytes);
    // Descriptors of the A / B operand at byte offset `off` of the stage ring (kUniform: 32-bit low word only)
    const uint32_t a_lo0 = static_cast<uint32_t>(a_desc0), b_lo0 = static_cast<uint32_t>(b_desc0);
    auto a_desc = [&](uint32_t off) -> uint64_t {
        if constexpr (T::kUniform) return sm90::sw128_desc_lo(a_lo0 + off / 16); else return a_desc0 + off / 16;
    };
    auto b_desc = [&](uint32_t off) -> uint64_t {
        if constexpr (T::kUniform) return sm90::sw128_desc_lo(b_lo0 + off / 16); else return b_desc0 + off / 16;
    };

    float acc[NACC];
    float acc2[T::kOverlapPromotion && kFP8 ? NACC : 1];  // the second accumulator set of the overlapped FP8 loop
    float fin[kFP8 ? NFIN : 1];
    float w_pre_a = 0.f, w_pre_b = 0.f;  // kPrefetchRowWeight GEMM2: the rows' routing weights, loaded before the mainloop
    uint32_t stage = 0, phase = 0, local_unit = 0;
    // Tile::kIncDesc: the current stage's A / B descriptor low words, carried with the stage index (every consumer
    // advance goes through next_stage)
    uint32_t a_lo_st = a_lo0, b_lo_st = b_lo0;
    // The consumers' step to the next stage of the ring.
    auto next_stage = [&]() {
        stage = stage + 1 == T::STAGES ? 0 : stage + 1;
        phase ^= stage == 0;
        if constexpr (T::kIncDesc) {
            a_lo_st = stage == 0 ? a_lo0 : a_lo_st + T::A_STAGE_BYTES / 16;
            b_lo_st = stage == 0 ? b_lo0 : b_lo_st + T::B_STAGE_BYTES / 16;
        }
    };
    // Releases a stage: one arrival per consumer warp, in every CTA of the cluster (their producers write into ours).
    // The warp barrier first: an arrive releases only the arriving lane's own prior accesses (PTX memory model), and
    // every lane read the stage (its A scales); without it the producer's next bulk copy into the stage races with the
    // other lanes' reads (compute-sanitizer racecheck, session 10 call i).
    auto release = [&](uint32_t s) {
        __syncwarp();
        if constexpr (T::kPairLaneRelease) {
            if (lane < T::kClusterM) sm90::mbar_arrive_cluster(empty_bar(s), lane);  // (kPair 3) lane c arrives in CTA c
        } else if (lane == 0) {
            if constexpr (T::kClusterM > 1) {
                for (uint32_t c = 0; c < T::kClusterM; ++c) sm90::mbar_arrive_cluster(empty_bar(s), c);
            } else {
                sm90::mbar_arrive(empty_bar(s));
            }
        }
    };
    // kRegA (v10): this warp's 16 A rows of stage `st`'s K block as four m16n8k32 e4m3 fragments (one ldmatrix.x4 per
    // k32 step; lane l addresses row l % 8 of matrix l / 8 - rows +8 for odd matrices, bytes +16 for matrices 2 and 3 -
    // in the SW128 image, where chunk c of row r sits at c ^ (r % 8))
    auto load_a_frags = [&](uint32_t (&af)[K_STEPS][4], uint32_t st) {
        const uint32_t row = m_off + warp_in_wg * 16 + ((lane >> 3) & 1) * 8 + (lane & 7), half = lane >> 4;
        const uint32_t arow = a_smem + st * T::A_STAGE_BYTES + row * moe_sched::kSlabBytes;
#pragma unroll
        for (uint32_t k = 0; k < K_STEPS; ++k) ldmatrix_x4(af[k], arow + ((((2 * k + half) ^ (lane & 7)) & 7) << 4));
    };
    // Per work unit: its rows, expert, first packed weight row of this warpgroup and (FP8) weight scale rows
    // ([E][w_rows/128][k_blocks]; GEMM1's warpgroup covers 64 gate + 64 up rows, one 128-row scale block each).
    struct Unit {
        uint32_t n_tile, row0, n_packed0;
        int fill;  // real rows of the unit's 128-row block
        const float* sb_gate;
        const float* sb_up;
    };
    auto unit_of = [&](const Live& n) {
        const moe_sched::WorkUnit w{n.m_unit, n.n_tile};
        const uint32_t row0 = cta_m_unit(w.m_unit) * T::BLOCK_M;
        const uint32_t e = T::kUniform ? __shfl_sync(0xffffffffu, n.e, 0) : n.e;  // (all lanes look up the same unit)
        const uint32_t n_packed0 = w.n_tile * T::BLOCK_N + n_off;
        Unit x{w.n_tile, row0, n_packed0, n.fill, nullptr, nullptr};
        if constexpr (kFP8) {
            const uint32_t scale_rows = w_rows / 128;
            const uint32_t blk0 = kSwiGLU ? (n_packed0 / 2) / 128 : n_packed0 / 128;
            x.sb_gate = p.W_scale + ((uint64_t)e * scale_rows + blk0) * k_blocks;
            x.sb_up = kSwiGLU ? p.W_scale + ((uint64_t)e * scale_rows + p.N / 128 + blk0) * k_blocks : x.sb_gate;
        }
        return x;
    };
    // The start of K block kb in the FP8 loops: the stagger release (kStagger: the first warpgroup lets the second one
    // start at its third K block, first unit only), the block's two weight scales (loaded before the wait, so their
    // latency overlaps it), the stage's full barrier, and this thread's two A scales from the stage.
    struct StageScales { float b0, b1, sa0, sa1; };
    auto enter_stage = [&](uint32_t kb, const float* sb0, const float* sb1) -> StageScales {
        if constexpr (T::kStagger) {
            if (wg == 0 && local_unit == 0 && kb == min(2u, k_blocks - 1)) sm90::named_barrier_arrive(2, moe_sched::kConsumerThreads);
        }
        const float b0 = __ldg(sb0 + kb), b1 = __ldg(sb1 + kb);
        sm90::mbar_wait(full_bar(stage), phase);
        // gather: A came through cp.async (generic proxy); order it before this thread's wgmma (async proxy) reads
        if constexpr (T::kGather == 1) sm90::fence_proxy_async_smem();
        const float* sa = reinterpret_cast<const float*>(smem + (s_smem - base) + stage * T::SCALE_STAGE_BYTES);
        return StageScales{b0, b1, sa[r_unit], sa[r_unit + 8]};
    };
    struct Scales { float s0g, s1g, s0u, s1u; };
    // FP8 overlapped loop: issues K block kb of unit x into accumulator set a (stage ring order).
    auto issue = [&](float (&a)[NACC], uint32_t kb, const Unit& x) -> Scales {
        const StageScales t = enter_stage(kb, x.sb_gate, x.sb_up);
        const float bg = t.b0, bu = t.b1, sa0 = t.sa0, sa1 = t.sa1;
#pragma unroll
        for (uint32_t i = 0; i < NACC; ++i) sm90::fence_operand(a[i]);
        sm90::wgmma_fence();
#pragma unroll
        for (uint32_t k = 0; k < K_STEPS; ++k) {
            if constexpr (T::kIncDesc) {
                Mma<kFP8, T::MMA_N>::run(a, sm90::sw128_desc_lo(a_lo_st + k * 2), sm90::sw128_desc_lo(b_lo_st + k * 2), k != 0);
            } else {
                Mma<kFP8, T::MMA_N>::run(a, a_desc(stage * T::A_STAGE_BYTES + k * 32), b_desc(stage * T::B_STAGE_BYTES + k * 32), k != 0);
            }
        }
        sm90::wgmma_commit();
        // (no operand fence here: touching the in-flight accumulators would make ptxas serialize)
        next_stage();
        return Scales{sa0 * bg, sa1 * bg, sa0 * bu, sa1 * bu};
    };
    uint32_t oldest = 0;     // stage of the oldest K block still in flight (overlapped FP8 loop)
    Scales first_scales{};   // kEarlyNextUnit: K block 0 of the unit about to start is already in flight in acc
    // The epilogue of one unit (from fin for FP8, acc for BF16); touches no other accumulator.
    // store == false (an idle warpgroup): no stores. The BF16 accumulators are only read here (SwiGLU written in place
    // into them, skipped on the idle path, made ptxas serialize the next unit's wgmmas: C7515).
    auto epilogue = [&](const Unit& cu, uint32_t local_unit, bool store, bool split) {
        const uint32_t row0 = cu.row0;
        const uint32_t n_packed0 = cu.n_packed0;
        auto& v = pick<kFP8>(fin, acc);
        const uint32_t row_a = row0 + r_unit, row_b = row_a + 8;
        if constexpr (kSwiGLU) {
            // Output column of packed group pair (j, j+1): (n_packed0 / 2) + (j / 2) * 8 + (lane % 4) * 2.
            const uint32_t col0 = n_packed0 / 2 + (lane % 4) * 2;
            if constexpr (kFP8) {
#pragma unroll
                for (uint32_t j = 0; j < NFIN / 4; j += 2) {
                    moe_swiglu_fast_x2(v[j * 4 + 0], v[(j + 1) * 4 + 0], v[j * 4 + 1], v[(j + 1) * 4 + 1], v[j * 4 + 0], v[j * 4 + 1]);
                    moe_swiglu_fast_x2(v[j * 4 + 2], v[(j + 1) * 4 + 2], v[j * 4 + 3], v[(j + 1) * 4 + 3], v[j * 4 + 2], v[j * 4 + 3]);
                }
            }
            if constexpr (T::kWide) {
                // fp32 SwiGLU rows, row-major [rows][N]; columns past N (a ragged last tile) are not stored
                if (!store) return;
#pragma unroll
                for (uint32_t j = 0; j < NFIN / 4; j += 2) {
                    const uint32_t col = col0 + (j / 2) * 8;
                    if (col < p.N) {
                        float* H32 = static_cast<float*>(p.out);
                        *reinterpret_cast<float2*>(H32 + (uint64_t)row_a * p.N + col) = make_float2(v[j * 4 + 0], v[j * 4 + 1]);
                        *reinterpret_cast<float2*>(H32 + (uint64_t)row_b * p.N + col) = make_float2(v[j * 4 + 2], v[j * 4 + 3]);
                    }
                }
                return;
            }
            if constexpr (!kFP8) {
                uint8_t* H = static_cast<uint8_t*>(p.out);
                if (store) {
#pragma unroll
                    for (uint32_t j = 0; j < NFIN / 4; j += 2) {
                        const uint32_t col = col0 + (j / 2) * 8;
                        float h0, h1, h2, h3;
                        moe_swiglu_fast_x2(v[j * 4 + 0], v[(j + 1) * 4 + 0], v[j * 4 + 1], v[(j + 1) * 4 + 1], h0, h1);
                        moe_swiglu_fast_x2(v[j * 4 + 2], v[(j + 1) * 4 + 2], v[j * 4 + 3], v[(j + 1) * 4 + 3], h2, h3);
                        *reinterpret_cast<__nv_bfloat162*>(H + moe_act_offset(row_a, col, p.N, 2)) = __floats2bfloat162_rn(h0, h1);
                        *reinterpret_cast<__nv_bfloat162*>(H + moe_act_offset(row_b, col, p.N, 2)) = __floats2bfloat162_rn(h2, h3);
                    }
                }
            } else {
                // an idle warpgroup (all-padding rows); split-N tiles never idle; an N pair's idle warpgroup still
                // takes part in the exchange below (its partner's is idle too: same rows)
                if (!T::kSplitN && !T::kPairN && !store) return;
                float m0 = 0.f, m1 = 0.f;
#pragma unroll
                for (uint32_t j = 0; j < NFIN / 4; j += 2) {
                    m0 = fmaxf(m0, fmaxf(fabsf(v[j * 4 + 0]), fabsf(v[j * 4 + 1])));
                    m1 = fmaxf(m1, fmaxf(fabsf(v[j * 4 + 2]), fabsf(v[j * 4 + 3])));
                }
                m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, 1));
                m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, 2));
                m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, 1));
                m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, 2));
                if constexpr (T::kPairN) {
                    // The partner CTA holds the other 64 outputs of the same rows: each quad leader writes its two rows'
                    // maxima into the partner's buffer (unit parity: the partner is at most one unit ahead, as it
                    // waits for these) and arrives on its mbarrier; then the partner's maxima are read from ours.
                    const uint32_t ri = warp_in_wg * 16 + lane / 4;
                    const uint32_t slot = exchange_smem + ((local_unit & 1) * 128 + wg * 64 + ri) * 4;
                    if (lane % 4 == 0) {
                        sm90::st_cluster_u32(slot, rank ^ 1u, __float_as_uint(m0));
                        sm90::st_cluster_u32(slot + 8 * 4, rank ^ 1u, __float_as_uint(m1));
                        sm90::mbar_arrive_release_cluster(pair_bar, rank ^ 1u);
                    }
                    sm90::mbar_wait_acquire_cluster(pair_bar, local_unit & 1);
                    const volatile float* got = exchange + (local_unit & 1) * 128 + wg * 64;
                    m0 = fmaxf(m0, got[ri]);
                    m1 = fmaxf(m1, got[ri + 8]);
                    if (!store) return;
                }
                if (T::kSplitN || split) {
                    // The other warpgroup holds the other 64 columns of the same rows: exchange row maxima.
                    float* buf = exchange + (local_unit & 1) * 128;
                    const uint32_t ri = warp_in_wg * 16 + lane / 4;
                    if (lane % 4 == 0) {
                        buf[wg * 64 + ri] = m0;
                        buf[wg * 64 + ri + 8] = m1;
                    }
                    sm90::named_barrier_sync(1, moe_sched::kConsumerThreads);
                    m0 = fmaxf(m0, buf[(1 - wg) * 64 + ri]);
                    m1 = fmaxf(m1, buf[(1 - wg) * 64 + ri + 8]);
                }
                const float q0 = moe_fp8_multiplier(m0), q1 = moe_fp8_multiplier(m1);
                uint8_t* H = static_cast<uint8_t*>(p.out);
                if constexpr (T::kStagedStore == 1) {
                    // This warpgroup's 64 rows x 128 columns are one contiguous 8 KB run of output slab n_tile (rows
                    // m_off..m_off+63 of the row block, grouped_gemm.cuh): built in shared memory in the same swizzled
                    // image (row r's 16-byte chunk c at c ^ (r % 8); r % 8 == lane / 4 here), then one bulk store.
                    // A split unit (kSplitSpill): both warpgroups hold rows 0..63, warpgroup w output columns 64w..64w+63;
                    // they fill warpgroup 0's buffer together and its first thread stores it.
                    const uint32_t owner = split ? 0u : wg;
                    const uint32_t buf = out_smem + owner * (T::OUT_STAGE_BYTES / 2);
                    const bool issuer = threadIdx.x % 128 == 0 && wg == owner;
                    if (issuer) sm90::bulk_wait_read0();  // the previous unit's store has read the buffer
                    if (split) sm90::named_barrier_sync(1, moe_sched::kConsumerThreads); else sm90::named_barrier_sync(3 + wg, 128);
                    uint8_t* sb = smem + (buf - base) + (warp_in_wg * 16 + lane / 4) * 128;
                    const uint32_t x = lane / 4;
#pragma unroll
                    for (uint32_t j = 0; j < NFIN / 4; j += 2) {
                        if (split && j / (NFIN / 8) != wg) continue;  // the other warpgroup's columns (zeros here)
                        const uint32_t off = (((j >> 2) ^ x) << 4) + ((j >> 1) & 1) * 8 + (lane & 3) * 2;  // column (j/2)*8 + (lane%4)*2
                        *reinterpret_cast<uint16_t*>(sb + off) = moe_to_e4m3x2(v[j * 4 + 0] * q0, v[j * 4 + 1] * q0);
                        *reinterpret_cast<uint16_t*>(sb + 8 * 128 + off) = moe_to_e4m3x2(v[j * 4 + 2] * q1, v[j * 4 + 3] * q1);
                    }
                    sm90::fence_proxy_async_smem();
                    if (split) sm90::named_barrier_sync(1, moe_sched::kConsumerThreads); else sm90::named_barrier_sync(3 + wg, 128);
                    if (issuer) {
                        sm90::bulk_copy_s2g(H + moe_act_offset(row0 + (split ? 0u : m_off), n_packed0 / 2, p.N, 1), buf, T::OUT_STAGE_BYTES / 2);
                        sm90::bulk_commit();
                    }
                } else {
#pragma unroll
                for (uint32_t j = 0; j < NFIN / 4; j += 2) {
                    const uint32_t col = col0 + (j / 2) * 8;
                    *reinterpret_cast<uint16_t*>(H + moe_act_offset(row_a, col, p.N, 1)) = moe_to_e4m3x2(v[j * 4 + 0] * q0, v[j * 4 + 1] * q0);
                    *reinterpret_cast<uint16_t*>(H + moe_act_offset(row_b, col, p.N, 1)) = moe_to_e4m3x2(v[j * 4 + 2] * q1, v[j * 4 + 3] * q1);
                }
                }
                if (((!T::kSplitN && !split) || wg == 0) && lane % 4 == 0 && (!T::kPairN || rank == 0)) {
                    const uint32_t out_block = T::kPairN ? cu.n_tile / 2 : cu.n_tile;  // 128 output columns per CTA (pair)
                    p.out_scale[moe_act_scale_offset(row_a, out_block, p.N)] = moe_fp8_scale(m0);
                    p.out_scale[moe_act_scale_offset(row_b, out_block, p.N)] = moe_fp8_scale(m1);
                }
            }
        } else {
            float* Y = static_cast<float*>(p.out);
            if (store) {
            const float wa = T::kPrefetchRowWeight ? w_pre_a : p.row_weight[row_a], wb = T::kPrefetchRowWeight ? w_pre_b : p.row_weight[row_b];
            const uint32_t col0 = n_packed0 + (lane % 4) * 2;
            if constexpr (T::kStagedY) {
                // Tile::kStagedY: the rows into this warpgroup's staging buffer (padded rows: the 8 rows x 4 lanes of a
                // warp's write hit 32 distinct banks), then warp 0 stores one 512-byte row per bulk copy. Bulk groups
                // belong to their issuing thread: each lane of warp 0 waits for its own previous unit's copies to have
                // read the buffer before anyone rewrites it.
                const uint32_t buf = out_smem + wg * (T::OUT_STAGE_BYTES / 2);
                if (warp_in_wg == 0) sm90::bulk_wait_read0();
                sm90::named_barrier_sync(3 + wg, 128);
                uint8_t* sb = smem + (buf - base) + (warp_in_wg * 16 + lane / 4) * T::Y_STAGE_ROW_BYTES + (lane % 4) * 4;
#pragma unroll
                for (uint32_t j = 0; j < NFIN / 4; ++j) {
                    *reinterpret_cast<__nv_bfloat162*>(sb + j * 16) = __floats2bfloat162_rn(wa * v[j * 4 + 0], wa * v[j * 4 + 1]);
                    *reinterpret_cast<__nv_bfloat162*>(sb + 8 * T::Y_STAGE_ROW_BYTES + j * 16) =
                            __floats2bfloat162_rn(wb * v[j * 4 + 2], wb * v[j * 4 + 3]);
                }
                sm90::fence_proxy_async_smem();
                sm90::named_barrier_sync(3 + wg, 128);
                if (warp_in_wg == 0) {
                    uint8_t* Yh = static_cast<uint8_t*>(p.out);
#pragma unroll
                    for (uint32_t r = lane; r < 64; r += 32) {
                        sm90::bulk_copy_s2g(Yh + ((uint64_t)(row0 + m_off + r) * p.N + n_packed0) * 2, buf + r * T::Y_STAGE_ROW_BYTES,
                                            T::WG_N * 2);
                    }
                    sm90::bulk_commit();
                }
            } else if (p.y_bf16) {
                // Whole 32-byte sectors per store (a 16-byte half-sector store cost GEMM2 time, not saved it): column
                // groups j, j+1 of the 4 lanes of a row are 16 bf16 = one sector; lane pairs swap one bf16x2 so even
                // lanes store 4 columns of group j, odd lanes 4 columns of group j+1, 8 bytes each.
                uint8_t* Yh = static_cast<uint8_t*>(p.out);
                const bool odd = lane & 1;
                const uint32_t col_st = n_packed0 + (lane % 4) * 2 + (odd ? 6 : 0);  // even q: 2q; odd q: 8 + 2(q - 1)
#pragma unroll
                for (uint32_t j = 0; j < NFIN / 4; j += 2) {
                    const __nv_bfloat162 a0 = __floats2bfloat162_rn(wa * v[j * 4 + 0], wa * v[j * 4 + 1]);
                    const __nv_bfloat162 a1 = __floats2bfloat162_rn(wa * v[(j + 1) * 4 + 0], wa * v[(j + 1) * 4 + 1]);
                    const __nv_bfloat162 b0 = __floats2bfloat162_rn(wb * v[j * 4 + 2], wb * v[j * 4 + 3]);
                    const __nv_bfloat162 b1 = __floats2bfloat162_rn(wb * v[(j + 1) * 4 + 2], wb * v[(j + 1) * 4 + 3]);
                    const uint32_t ua0 = *reinterpret_cast<const uint32_t*>(&a0), ua1 = *reinterpret_cast<const uint32_t*>(&a1);
                    const uint32_t ub0 = *reinterpret_cast<const uint32_t*>(&b0), ub1 = *reinterpret_cast<const uint32_t*>(&b1);
                    const uint32_t ra = __shfl_xor_sync(0xffffffffu, odd ? ua0 : ua1, 1);
                    const uint32_t rb = __shfl_xor_sync(0xffffffffu, odd ? ub0 : ub1, 1);
                    const uint32_t col = col_st + j * 8;
                    *reinterpret_cast<uint2*>(Yh + ((uint64_t)row_a * p.N + col) * 2) = odd ? make_uint2(ra, ua1) : make_uint2(ua0, ra);
                    *reinterpret_cast<uint2*>(Yh + ((uint64_t)row_b * p.N + col) * 2) = odd ? make_uint2(rb, ub1) : make_uint2(ub0, rb);
                }
            } else {
#pragma unroll
            for (uint32_t j = 0; j < NFIN / 4; ++j) {
                const uint32_t col = col0 + j * 8;
                *reinterpret_cast<float2*>(Y + (uint64_t)row_a * p.N + col) = make_float2(wa * v[j * 4 + 0], wa * v[j * 4 + 1]);
                *reinterpret_cast<float2*>(Y + (uint64_t)row_b * p.N + col) = make_float2(wb * v[j * 4 + 2], wb * v[j * 4 + 3]);
            }
            }
            }
        }
    };
    // The loop's only back edge is "this unit has a successor": with kEarlyNextUnit the successor's first K block is
    // then in flight on every path into the loop head (ptxas's wgmma hazard analysis needs that to stay quiet).
    // The next live unit is looked up while the current unit's first K block computes (its loads then cost no
    // tensor time), except on the drain path of an idle warpgroup.
    Live cur_live = find_live(first_unit, T::kDynamic);
    if (cur_live.u < total_units) {
    if constexpr (T::kStagger) {
        if (wg == 1) sm90::named_barrier_sync(2, moe_sched::kConsumerThreads);
    }
    if constexpr (T::kEarlyNextUnit) {
        oldest = stage;
        first_scales = issue(acc, 0, unit_of(cur_live));
    }
    for (;;) {
        const Unit cu = unit_of(cur_live);
        Live next_live;
        // BLOCK_M 128 (the two warpgroups on the two 64-row halves): the second one idles when its rows are all
        // padding; it still takes and releases every stage with the first.
        // kSplitSpill (FP8 GEMM1): such a unit is split along N between the warpgroups instead (both on rows 0..63).
        const bool split = T::kSplitSpill && kSwiGLU && skip_padding && cu.fill <= 64;
        const bool idle = !T::kSplitN && !split && skip_padding && wg == 1 && cu.fill <= 64;
        r_unit = split ? r_local - m_off : r_local;
        // a split unit's warpgroup 1 reads A rows 0..63: its descriptors step back by its 64 rows (whole SW128 atoms)
        const uint32_t a_back = split ? m_off * moe_sched::kSlabBytes / 16 : 0u;

        if (idle) {
            if constexpr (!T::kDynamic) next_live = find_live(cur_live.u + unit_stride, false);
            for (uint32_t kb = 0; kb < k_blocks; ++kb) {
                sm90::mbar_wait(full_bar(stage), phase);
                release(stage);
                next_stage();
            }
        } else if constexpr (kFP8) {
            const float* sb_gate = cu.sb_gate;
            const float* sb_up = cu.sb_up;
#pragma unroll
            for (uint32_t i = 0; i < NFIN; ++i) fin[i] = 0.f;
            if constexpr (T::kPrefetchRowWeight && !kSwiGLU) {  // used in the epilogue: its latency hides in the mainloop
                w_pre_a = p.row_weight[cu.row0 + r_local];
                w_pre_b = p.row_weight[cu.row0 + r_local + 8];
            }
            if constexpr (T::kWide) {
                // One m64n192 group per K block, waited for and promoted (the other warpgroup's group keeps the tensor
                // cores busy meanwhile). Output group i (8 columns: packed groups 2i gate, 2i + 1 up) takes the first
                // scale block below the tile's split, the second from it; the split is a template value per unit.
                // The tile's outputs out0 .. out0 + 95 lie in scale blocks blk0 and blk1 (= blk0, or the next one; a ragged
                // last tile's are clamped to the last block); split = its output groups of 8 in blk0 (4, 8 or 12 = all).
                const uint32_t out0 = cu.n_packed0 / 2, blk0 = out0 / 128, blk1 = min((out0 + 95) / 128, p.N / 128 - 1);
                const uint32_t split = blk1 > blk0 ? ((blk0 + 1) * 128 - out0) / 8 : 12u;
                const float* sb_gate2 = cu.sb_gate + (blk1 - blk0) * k_blocks;
                const float* sb_up2 = cu.sb_up + (blk1 - blk0) * k_blocks;
                auto mainloop = [&](auto split_tag) {
                    constexpr uint32_t kSplit = decltype(split_tag)::value;
                    for (uint32_t kb = 0; kb < k_blocks; ++kb) {
                        const float g1 = __ldg(cu.sb_gate + kb), u1 = __ldg(cu.sb_up + kb);
                        const float g2 = kSplit < 12 ? __ldg(sb_gate2 + kb) : g1, u2 = kSplit < 12 ? __ldg(sb_up2 + kb) : u1;
                        sm90::mbar_wait(full_bar(stage), phase);
                        const float* sa = reinterpret_cast<const float*>(smem + (s_smem - base) + stage * T::SCALE_STAGE_BYTES);
                        const float sa0 = sa[r_unit], sa1 = sa[r_unit + 8];
#pragma unroll
                        for (uint32_t i = 0; i < NACC; ++i) sm90::fence_operand(acc[i]);
                        sm90::wgmma_fence();
#pragma unroll
                        for (uint32_t k = 0; k < K_STEPS; ++k)
                            Mma<kFP8, T::MMA_N>::run(acc, a_desc(stage * T::A_STAGE_BYTES + k * 32), b_desc(stage * T::B_STAGE_BYTES + k * 32), k != 0);
                        sm90::wgmma_commit();
#pragma unroll
                        for (uint32_t i = 0; i < NACC; ++i) sm90::fence_operand(acc[i]);
                        sm90::wgmma_wait<0>();
                        release(stage);
                        next_stage();
#pragma unroll
                        for (uint32_t j = 0; j < NACC / 4; ++j) {
                            const bool first = j / 2 < kSplit;
                            const float b = (j & 1) ? (first ? u1 : u2) : (first ? g1 : g2);
                            fin[j * 4 + 0] += sa0 * b * acc[j * 4 + 0];
                            fin[j * 4 + 1] += sa0 * b * acc[j * 4 + 1];
                            fin[j * 4 + 2] += sa1 * b * acc[j * 4 + 2];
                            fin[j * 4 + 3] += sa1 * b * acc[j * 4 + 3];
                        }
                    }
                };
                if (split == 4) mainloop(std::integral_constant<uint32_t, 4>{});
                else if (split == 8) mainloop(std::integral_constant<uint32_t, 8>{});
                else mainloop(std::integral_constant<uint32_t, 12>{});
            } else if (T::kRoll == 1 || (T::kRoll == 2 && skip_padding && cu.fill <= 64)) {
              if constexpr (T::kRoll != 0) {
                // Tile::kRoll: groups of GN packed columns, G per K block, into accumulators ra / rb by group parity
                // (G is even, so a block's group q always lands in the same one). Invariant at a block's start: its
                // group 0 is in flight in ra.
                constexpr uint32_t GN = 64, G = 256 / GN, NR = GN / 2;
                const float* sb_second = kSwiGLU ? sb_up : sb_gate + k_blocks;
                float ra[NR], rb[NR];
                auto issue_group = [&](float (&a)[NR], uint32_t st, uint32_t q) {
#pragma unroll
                    for (uint32_t i = 0; i < NR; ++i) sm90::fence_operand(a[i]);
                    sm90::wgmma_fence();
#pragma unroll
                    for (uint32_t k = 0; k < K_STEPS; ++k)
                        Mma<kFP8, GN>::run(a, a_desc(st * T::A_STAGE_BYTES + k * 32),
                                           b_desc(st * T::B_STAGE_BYTES + q * GN * moe_sched::kSlabBytes + k * 32), k != 0);
                    sm90::wgmma_commit();
                };
                auto promote = [&](uint32_t q, float (&a)[NR], const StageScales& t) {
#pragma unroll
                    for (uint32_t i = 0; i < NR; ++i) sm90::fence_operand(a[i]);
                    // GEMM1: gate groups (even j) take b0, up groups (odd j) b1; GEMM2: the first 128 columns b0
                    const float bg = kSwiGLU ? t.b0 : (q < G / 2 ? t.b0 : t.b1), bu = kSwiGLU ? t.b1 : bg;
                    const float s0g = t.sa0 * bg, s1g = t.sa1 * bg, s0u = t.sa0 * bu, s1u = t.sa1 * bu;
#pragma unroll
                    for (uint32_t j = 0; j < NR / 4; ++j) {
                        const bool up = kSwiGLU && (j & 1);
                        float* f = fin + q * NR + j * 4;
                        f[0] += (up ? s0u : s0g) * a[j * 4 + 0];
                        f[1] += (up ? s0u : s0g) * a[j * 4 + 1];
                        f[2] += (up ? s1u : s1g) * a[j * 4 + 2];
                        f[3] += (up ? s1u : s1g) * a[j * 4 + 3];
                    }
                };
                StageScales t = enter_stage(0, sb_gate, sb_second);
                uint32_t st = stage;
                next_stage();
                issue_group(ra, st, 0);
                // K block kb (its group 0 in flight in ra); the last one drains instead of starting block kb + 1.
                auto block = [&](auto last_tag, uint32_t kb) {
                    constexpr bool kLast = decltype(last_tag)::value;
#pragma unroll
                    for (uint32_t q = 1; q < G; ++q) {
                        issue_group((q & 1) ? rb : ra, st, q);
                        sm90::wgmma_wait<1>();
                        promote(q - 1, ((q - 1) & 1) ? rb : ra, t);
                    }
                    if constexpr (!kLast) {
                        const StageScales tn = enter_stage(kb + 1, sb_gate, sb_second);
                        const uint32_t sn = stage;
                        next_stage();
                        issue_group(ra, sn, 0);
                        sm90::wgmma_wait<1>();
                        release(st);
                        promote(G - 1, rb, t);
                        t = tn;
                        st = sn;
                    } else {
                        sm90::wgmma_wait<0>();
                        release(st);
                        promote(G - 1, rb, t);
                    }
                };
                // Two K blocks per iteration and a branch for the tail, the overlapped loop's shape: with one block per
                // iteration and the last one peeled, ptxas serialized every wgmma (C7514; no copies in the PTX).
                uint32_t kb = 0;
                for (; kb + 2 < k_blocks; kb += 2) {
                    block(std::false_type{}, kb);
                    block(std::false_type{}, kb + 1);
                }
                if (kb + 1 < k_blocks) {
                    block(std::false_type{}, kb);
                    block(std::true_type{}, kb + 1);
                } else {
                    block(std::true_type{}, kb);
                }
              }
            } else if constexpr (T::kQuarters) {
                // v10: 64 rows x 256 packed rows per warpgroup as four 64-wide groups, A from registers (this warp's
                // 16 rows of the K block, four ldmatrix.x4), two 32-register accumulators: group q + 1 runs while group
                // q is promoted. Column layout of fin as the halves': quarter q, register j = fin[q * 32 + j].
                const float* sb_second = kSwiGLU ? sb_up : sb_gate + k_blocks;
                float tq0[32], tq1[32];
#pragma unroll (T::kKbUnroll)
                for (uint32_t kb = 0; kb < k_blocks; ++kb) {
                    const StageScales t = enter_stage(kb, sb_gate, sb_second);
                    const float b0 = t.b0, b1 = t.b1, sa0 = t.sa0, sa1 = t.sa1;
                    uint32_t af[K_STEPS][4];
                    load_a_frags(af, stage);
                    auto promote = [&](uint32_t q, float (&a)[32]) {
#pragma unroll
                        for (uint32_t i = 0; i < 32; ++i) sm90::fence_operand(a[i]);
                        // GEMM1: gate groups (even j) take b0, up groups (odd j) b1; GEMM2: quarters 0-1 b0, 2-3 b1
                        const float bg = kSwiGLU ? b0 : (q < 2 ? b0 : b1), bu = kSwiGLU ? b1 : bg;
                        const float s0g = sa0 * bg, s1g = sa1 * bg, s0u = sa0 * bu, s1u = sa1 * bu;
#pragma unroll
                        for (uint32_t j = 0; j < 8; ++j) {
                            const bool up = kSwiGLU && (j & 1);
                            float* f = fin + q * 32 + j * 4;
                            f[0] += (up ? s0u : s0g) * a[j * 4 + 0];
                            f[1] += (up ? s0u : s0g) * a[j * 4 + 1];
                            f[2] += (up ? s1u : s1g) * a[j * 4 + 2];
                            f[3] += (up ? s1u : s1g) * a[j * 4 + 3];
                        }
                    };
#pragma unroll
                    for (uint32_t q = 0; q < 4; ++q) {
                        float (&tq)[32] = (q & 1) ? tq1 : tq0;
#pragma unroll
                        for (uint32_t i = 0; i < 32; ++i) sm90::fence_operand(tq[i]);
                        sm90::wgmma_fence();
#pragma unroll
                        for (uint32_t k = 0; k < K_STEPS; ++k)
                            wgmma_m64n64k32_e4m3_rs(tq, af[k], b_desc(stage * T::B_STAGE_BYTES + q * 64 * moe_sched::kSlabBytes + k * 32), k != 0);
                        sm90::wgmma_commit();
                        if (q > 0) {
                            sm90::wgmma_wait<1>();
                            promote(q - 1, (q & 1) ? tq0 : tq1);
                        }
                    }
                    sm90::wgmma_wait<0>();
                    release(stage);
                    promote(3, tq1);
                    next_stage();
                }
            } else if constexpr (T::kHalves) {
                // 64 rows x 256 packed rows per warpgroup as two 128-row halves into one accumulator, each promoted
                // right after its wgmmas retire (the other warpgroup's wgmmas keep the tensor cores busy meanwhile).
                // Weight scales: GEMM1's halves both span gate block sb_gate and up block sb_up (128 output columns);
                // GEMM2's half h is weight row block n_packed0 / 128 + h.
                const float* sb_second = kSwiGLU ? sb_up : sb_gate + k_blocks;
#pragma unroll (T::kKbUnroll)
                for (uint32_t kb = 0; kb < k_blocks; ++kb) {
                    const StageScales t = enter_stage(kb, sb_gate, sb_second);
                    const float b0 = t.b0, b1 = t.b1, sa0 = t.sa0, sa1 = t.sa1;
                    uint32_t af[K_STEPS][4];  // kRegAHalves: this warp's A rows of the K block
                    if constexpr (T::kRegAHalves) load_a_frags(af, stage);
#pragma unroll
                    for (uint32_t h = 0; h < 2; ++h) {
                        if (T::kSplitSpill && split && h != wg) continue;  // a split unit: this warpgroup's half only
#pragma unroll
                        for (uint32_t i = 0; i < NACC; ++i) sm90::fence_operand(acc[i]);
                        sm90::wgmma_fence();
#pragma unroll
                        for (uint32_t k = 0; k < K_STEPS; ++k) {
                            if constexpr (T::kRegAHalves) {
                                wgmma_m64n128k32_e4m3_rs(acc, af[k], b_desc(stage * T::B_STAGE_BYTES + h * T::MMA_N * moe_sched::kSlabBytes + k * 32), k != 0);
                            } else if constexpr (T::kIncDesc) {
                                Mma<kFP8, T::MMA_N>::run(acc, sm90::sw128_desc_lo(a_lo_st + k * 2),
                                                         sm90::sw128_desc_lo(b_lo_st + h * T::MMA_N * moe_sched::kSlabBytes / 16 + k * 2),
                                                         k != 0);
                            } else {
                                Mma<kFP8, T::MMA_N>::run(acc, a_desc(stage * T::A_STAGE_BYTES + k * 32) - (T::kSplitSpill ? a_back : 0u),
                                                         b_desc(stage * T::B_STAGE_BYTES + h * T::MMA_N * moe_sched::kSlabBytes + k * 32),
                                                         k != 0);
                            }
                        }
                        sm90::wgmma_commit();
                        // kLookahead (static units): the next unit is looked up while the unit's first group computes
                        // (its dependent loads would otherwise come after the epilogue, with both warpgroups idle)
                        if constexpr (T::kLookahead) {
                            if (h == 0 && kb == 0) next_live = find_live(cur_live.u + unit_stride, false);
                        }
#pragma unroll
                        for (uint32_t i = 0; i < NACC; ++i) sm90::fence_operand(acc[i]);
                        sm90::wgmma_wait<0>();
                        if (h == 1 || (T::kSplitSpill && split)) release(stage);
                        // GEMM1: gate groups (even j) take b0, up groups (odd j) b1; GEMM2: half h takes b_h
                        const float bg = kSwiGLU ? b0 : (h == 0 ? b0 : b1), bu = kSwiGLU ? b1 : bg;
                        const float s0g = sa0 * bg, s1g = sa1 * bg, s0u = sa0 * bu, s1u = sa1 * bu;
#pragma unroll
                        for (uint32_t j = 0; j < NACC / 4; ++j) {
                            const bool up = kSwiGLU && (j & 1);
                            float* f = fin + h * NACC + j * 4;
                            f[0] += (up ? s0u : s0g) * acc[j * 4 + 0];
                            f[1] += (up ? s0u : s0g) * acc[j * 4 + 1];
                            f[2] += (up ? s1u : s1g) * acc[j * 4 + 2];
                            f[3] += (up ? s1u : s1g) * acc[j * 4 + 3];
                        }
                    }
                    next_stage();
                }
            } else if constexpr (T::kOverlapPromotion) {
                // Two accumulator sets: K block kb+1's wgmmas are in flight while kb is promoted.
                auto promote = [&](float (&a)[NACC], const Scales& c) {
#pragma unroll
                    for (uint32_t i = 0; i < NACC; ++i) sm90::fence_operand(a[i]);
#pragma unroll
                    for (uint32_t j = 0; j < NACC / 4; ++j) {
                        const bool up = kSwiGLU && (j & 1);
                        fin[j * 4 + 0] += (up ? c.s0u : c.s0g) * a[j * 4 + 0];
                        fin[j * 4 + 1] += (up ? c.s0u : c.s0g) * a[j * 4 + 1];
                        fin[j * 4 + 2] += (up ? c.s1u : c.s1g) * a[j * 4 + 2];
                        fin[j * 4 + 3] += (up ? c.s1u : c.s1g) * a[j * 4 + 3];
                    }
                };
                auto release_oldest = [&]() {
                    release(oldest);
                    oldest = oldest + 1 == T::STAGES ? 0 : oldest + 1;
                };
                // Invariant at the loop head: K block kb is in flight in acc. No branch inside the loop body, so the
                // in-flight accumulators keep their registers across the back edge (no copies ptxas must serialize).
                Scales cur, nxt;
                if constexpr (T::kEarlyNextUnit) {
                    cur = first_scales;
                } else {
                    oldest = stage;
                    cur = issue(acc, 0, cu);
                }
                if constexpr (T::kLookahead) next_live = find_live(cur_live.u + unit_stride, false);
                uint32_t kb = 0;
                for (; kb + 2 < k_blocks; kb += 2) {
                    nxt = issue(acc2, kb + 1, cu);
                    sm90::wgmma_wait<1>();
                    release_oldest();
                    promote(acc, cur);
                    cur = issue(acc, kb + 2, cu);
                    sm90::wgmma_wait<1>();
                    release_oldest();
                    promote(acc2, nxt);
                }
                if (kb + 1 < k_blocks) {
                    nxt = issue(acc2, kb + 1, cu);
                    sm90::wgmma_wait<1>();
                    release_oldest();
                    promote(acc, cur);
                    sm90::wgmma_wait<0>();
                    release_oldest();
                    promote(acc2, nxt);
                } else {
                    sm90::wgmma_wait<0>();
                    release_oldest();
                    promote(acc, cur);
                }
                if constexpr (T::kEarlyNextUnit) {
                    // Start the next unit's first K block, then run this unit's epilogue while it computes. The
                    // epilogue is written in both branches so that acc is uniformly in flight (or not) in each.
                    if (next_live.u < total_units) {
                        oldest = stage;
                        first_scales = issue(acc, 0, unit_of(next_live));
                        epilogue(cu, local_unit, true, false);
                    } else {
                        sm90::wgmma_wait<0>();
                        epilogue(cu, local_unit, true, false);
                        break;
                    }
                } else {
                    sm90::wgmma_wait<0>();  // nothing is in flight here; says so to ptxas's hazard analysis
                }
            } else {
            if constexpr (T::kLookahead) next_live = find_live(cur_live.u + unit_stride, false);
            for (uint32_t kb = 0; kb < k_blocks; ++kb) {
                const StageScales t = enter_stage(kb, sb_gate, sb_up);
                const float bg = t.b0, bu = t.b1, sa0 = t.sa0, sa1 = t.sa1;
                const float s0g = sa0 * bg, s1g = sa1 * bg, s0u = sa0 * bu, s1u = sa1 * bu;
                constexpr uint32_t kSteps = T::kStepsPerPromotion;
#pragma unroll
                for (uint32_t k0 = 0; k0 < K_STEPS; k0 += kSteps) {
#pragma unroll
                    for (uint32_t i = 0; i < NACC; ++i) sm90::fence_operand(acc[i]);
                    sm90::wgmma_fence();
#pragma unroll
                    for (uint32_t k = k0; k < k0 + kSteps; ++k) {
                        Mma<kFP8, T::MMA_N>::run(acc, a_desc(stage * T::A_STAGE_BYTES + k * 32), b_desc(stage * T::B_STAGE_BYTES + k * 32), k != k0);
                    }
                    sm90::wgmma_commit();
#pragma unroll
                    for (uint32_t i = 0; i < NACC; ++i) sm90::fence_operand(acc[i]);
                    sm90::wgmma_wait<0>();
                    if (k0 + kSteps == K_STEPS) {
                        release(stage);
                        next_stage();
                    }
#pragma unroll
                    for (uint32_t j = 0; j < NACC / 4; ++j) {
                        const bool up = kSwiGLU && (j & 1);
                        fin[j * 4 + 0] += (up ? s0u : s0g) * acc[j * 4 + 0];
                        fin[j * 4 + 1] += (up ? s0u : s0g) * acc[j * 4 + 1];
                        fin[j * 4 + 2] += (up ? s1u : s1g) * acc[j * 4 + 2];
                        fin[j * 4 + 3] += (up ? s1u : s1g) * acc[j * 4 + 3];
                    }
                }
            }
            }
        } else {
            uint32_t prev_stage = 0;
            for (uint32_t kb = 0; kb < k_blocks; ++kb) {
                sm90::mbar_wait(full_bar(stage), phase);
#pragma unroll
                for (uint32_t i = 0; i < NACC; ++i) sm90::fence_operand(acc[i]);
                sm90::wgmma_fence();
#pragma unroll
                for (uint32_t k = 0; k < K_STEPS; ++k) {
                    Mma<kFP8, T::MMA_N>::run(acc, a_desc(stage * T::A_STAGE_BYTES + k * 32), b_desc(stage * T::B_STAGE_BYTES + k * 32), (kb | k) != 0);
                }
                sm90::wgmma_commit();
#pragma unroll
                for (uint32_t i = 0; i < NACC; ++i) sm90::fence_operand(acc[i]);
                // Keep this stage's wgmmas in flight; the previous stage's are done, so release it.
                sm90::wgmma_wait<1>();
                if (kb > 0) release(prev_stage);
                else if constexpr (T::kLookahead) next_live = find_live(cur_live.u + unit_stride, false);  // while K block 0 computes
                prev_stage = stage;
                next_stage();
            }
            sm90::wgmma_wait<0>();
#pragma unroll
            for (uint32_t i = 0; i < NACC; ++i) sm90::fence_operand(acc[i]);
            release(prev_stage);
        }

        if constexpr (!T::kEarlyNextUnit) {
            epilogue(cu, local_unit, !idle, split);
            if constexpr (T::kDynamic) {
                // the next stage starts the next unit (or says there is none): its id is there once the stage is full
                sm90::mbar_wait(full_bar(stage), phase);
                const volatile uint32_t* slot = unit_slots + stage * T::UNIT_SLOT_WORDS;
                next_live = slot[0] >= total_units ? Live{total_units, 0, 0, 0, 0}
                                                   : Live{slot[0], slot[1], slot[2], slot[3], (int)slot[4]};
            } else if constexpr (!T::kLookahead) {
                if (!idle) next_live = find_live(cur_live.u + unit_stride, false);
            }
            if (next_live.u >= total_units) break;
        }
        cur_live = next_live;
        ++local_unit;
    }
    }
    // the last bulk store must have read its shared-memory buffer before the CTA's shared memory goes away
    if constexpr (T::kStagedStore != 0) {
        if (T::kStagedY ? warp_in_wg == 0 : threadIdx.x % 128 == 0) sm90::bulk_wait0();
    }
    }  // consumers
    // No CTA may leave while its peer can still arrive on its barriers.
    if constexpr (T::kClusterM > 1) sm90::cluster_sync();
}

}  // namespace moe_gemm
