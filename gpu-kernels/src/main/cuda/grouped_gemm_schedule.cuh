// grouped_gemm_schedule.cuh: the tile configurations of the fast grouped GEMMs and the persistent work order.
// Host-independent: the same numbers are mirrored by dev.sparkmoe.kernels.GroupedGemmConfig (keep in sync).
#pragma once
#include <cstdint>

namespace moe_sched {

// One CTA = 2 consumer warpgroups (wgmma, 64 rows each or half the N tile each) + 1 producer warpgroup.
constexpr uint32_t kConsumerThreads = 256;
constexpr uint32_t kThreads = 384;
// setmaxnreg split of the 64K registers: 128 x 40 (producer: one thread issues copies; 24 made it spill) + 256 x 232
// (consumers: two FP8 accumulator sets and the promoted result = 192 registers, plus addressing).
constexpr uint32_t kProducerRegisters = 40;
constexpr uint32_t kConsumerRegisters = 232;
static_assert(128 * kProducerRegisters + 256 * kConsumerRegisters <= 65536, "register file");
// Bytes of one 128-byte-swizzled K slab row: the K extent of one pipeline stage (64 bf16 / 128 e4m3).
constexpr uint32_t kSlabBytes = 128;

// A tile shape. BLOCK_M rows x BLOCK_N packed weight rows (GEMM1: gate+up interleaved, so BLOCK_N/2 outputs).
// kSplitN: the two consumer warpgroups take the two halves of BLOCK_N on the same BLOCK_M (=64) rows, else the two
// 64-row halves of BLOCK_M (=128) on the whole BLOCK_N.
// kClusterM = 2: two CTAs (a thread-block cluster) take the two 64-row halves of one 128-row block (so one expert)
// on the same N tile; each loads its own A and half of the B tile, multicast into both CTAs, halving the
// L2->SM traffic of B. kStepsPerPromotion (FP8): wgmma K steps (32 each) accumulated before each promotion.
// kOverlapPromotion (FP8, 4 steps per promotion): two accumulator sets, so a warpgroup's wgmmas of K block kb+1 run
// while it promotes K block kb.
// kLookahead: see below. kEarlyNextUnit (with kOverlapPromotion): the first K block of a warpgroup's next unit is issued before the epilogue
// of the current one, so the tensor cores work during SwiGLU / re-quantization / stores.
// kHalves (FP8, 128 x 256 packed rows, v4): each consumer warpgroup owns 64 rows x all 256 packed rows and runs them
// as two 128-wide wgmma halves one after the other into ONE 64-register accumulator (promoted after each half into
// a 128-register result: 192 registers, as the split-N tile's two sets). No promotion overlap inside a warpgroup;
// the two warpgroups' halves interleave on the tensor cores instead (DeepGEMM's scheme). Per 128 of K a CTA loads
// 16 KB A + 32 KB B for 8.4 MFLOP (the 64 x 256 tile: 8 + 32 KB for 4.2 MFLOP), and GEMM1's re-quantization block
// (128 output columns) lies inside one warpgroup (no row-amax exchange).
template <uint32_t BLOCK_M_, uint32_t BLOCK_N_, uint32_t STAGES_, bool kSplitN_, uint32_t kClusterM_ = 1,
          uint32_t kStepsPerPromotion_ = 4, bool kOverlapPromotion_ = true, bool kEarlyNextUnit_ = false,
          bool kLookahead_ = false, bool kHalves_ = false, bool kPrefetch_ = false, bool kStagger_ = false,
          bool kUniform_ = false, uint32_t kStagedStore_ = 0, uint32_t kKbUnroll_ = 1, bool kSplitSpill_ = false,
          uint32_t kDynamic_ = 0, uint32_t kGather_ = 0, uint32_t kPair_ = 0, uint32_t kRegA_ = 0, bool kPairN_ = false,
          uint32_t kRoll_ = 0, bool kWide_ = false, bool kIncDesc_ = false, uint32_t kGroupOrder_ = 0>
struct Tile {
    // kGroupOrder (session 18): the order of the 128-row tiles' work units where the experts' rows are known (padding
    // skip). 0: the claiming tiles (kDynamic) walk each expert's row blocks in chunks of kGroupRowBlocks, the last one
    // short (Mixtral at 4096 tokens: 8-9 row blocks per expert, a chunk of 8 and one of 1, each streaming all of the
    // expert's weight tiles); the static tiles walk fixed chunks of kGroupRowBlocks over all row blocks
    // (moe_sched::unit_at), straddling experts. 1: each expert's row blocks in floor(R / kGroupRowBlocks) chunks (at
    // least one) of balanced size (moe_sched::expert_unit_at), static or claiming. Production keeps 0 (benchmark
    // variants _x / _dx, docs/kernel-notes.md v20): with 1 the static tiles ran 4-16 % slower (not separated: the order
    // itself, or their consumers' own lookups of each next unit, now one dependent load longer), the claiming ones within
    // +-0.4 % in the layers.
    static constexpr uint32_t kGroupOrder = kGroupOrder_;
    static_assert(kGroupOrder_ <= 1, "group order 0 or 1");
    // kPairN (session 14, FP8 GEMM1, benchmark variant; measured 10-23 % slower than _m128usu2d, kernel-notes v11): a
    // 2-CTA cluster runs one 128-row block on the two halves of a
    // 256-packed-row re-quantization block - CTA `rank` on packed rows 128 rank .. 128 rank + 127 (64 SwiGLU outputs).
    // Each CTA is a 128 x 128 tile whose warpgroups take the two 64-row halves, each one m64n128 wgmma group per K block
    // with two accumulator sets (the next K block's group runs while the last one is promoted: the one-group-per-K-block
    // cover that v11's probe measured, in 64 + 64 + 64 registers). The A tile is multicast (each CTA loads one 64-row
    // half for both), so L2 -> SM bytes stay at 24 KB per 4.2 MFLOP per CTA. The rows' maxima for the per-128
    // re-quantization are exchanged through distributed shared memory once per unit (one mbarrier per CTA, arrived on
    // remotely by the partner's 64 quad leaders).
    static constexpr bool kPairN = kPairN_;
    // kRegA (v10, session 10, lead; FP8 halves tile; benchmark variants, both measured slower): the wgmmas take A from
    // registers (ldmatrix once per K block, so A is read from shared memory once instead of once per 128-wide half).
    // 1 (kQuarters): each warpgroup's 256 packed columns run as four 64-wide groups into two 32-register accumulators,
    // pipelined - group q + 1 in flight while group q is promoted (wgmma.wait_group 1); 2 (kRegAHalves): the halves
    // loop as it is, A from registers.
    // kIncDesc (session 15, FP8 halves tile and overlapped loop): the A and B descriptors' low words of the current
    // stage are carried through the K loop and advanced with the stage (one add or a reset per K block, placed where the
    // stage index itself is advanced) instead of derived from the stage index before each group. ncu's per-instruction
    // samples (session 15 call g) put that derivation (shift, mask, add: ~15 dependent uniform instructions) on the path
    // from one K block's last promotion to the next block's first wgmma - the hand-over the other warpgroup must cover.
    // On in the production FP8 tiles _m128usu2d, _m128u and _u / _ud: +0.4..1.7 % (docs/kernel-notes.md v12); in the
    // static _m128usu2 since session 17 (v19).
    static constexpr bool kIncDesc = kIncDesc_;
    static_assert(!kIncDesc_ || (kUniform_ && kRegA_ == 0 && !kSplitSpill_ && kRoll_ == 0 && !kEarlyNextUnit_ && !kStagger_
                                 && (kHalves_ || (kOverlapPromotion_ && kStepsPerPromotion_ == 4))),
                  "carried descriptors: the uniform halves tile or the overlapped loop");
    static constexpr bool kQuarters = kRegA_ == 1;
    static constexpr bool kRegAHalves = kRegA_ == 2;
    // kRoll (session 15, FP8 halves tile; benchmark variants): a warpgroup's 256 packed columns run as four 64-wide
    // groups (A and B from shared memory) into two 32-register accumulators that take turns (fin 128 + 64: the halves
    // tile's register budget), and the turn does not stop at a K block's end: group g + 1 (the next K block's first
    // one after a block's last) is issued before group g is waited for and promoted, so the warpgroup's own wgmmas run
    // while it promotes. 1: every unit; 2: only units whose second warpgroup idles (at most 64 real rows: the other
    // warpgroup's groups cannot cover the promotion there), the halves loop elsewhere. (v10's rolling quarters took A
    // from registers, which cost 6-10 % by itself, and drained at every K block's end. 128-wide groups in two
    // 64-register accumulators were compiled too: fin 128 + 128 spills ~1 KB.)
    static constexpr uint32_t kRoll = kRoll_;
    static_assert(kRoll_ <= 2 && (kRoll_ == 0 || (kHalves_ && kRegA_ == 0 && !kSplitSpill_ && kPair_ == 0 && kClusterM_ == 1 && !kStagger_)),
                  "rolling groups: the plain halves tile");
    // kWide (session 15, FP8 GEMM1; benchmark variant): DeepGEMM's SM90 tile shape, 128 rows x 192 packed rows (96
    // SwiGLU outputs), each warpgroup one m64n192 wgmma group per K block (96 accumulator + 96 result registers) waited
    // for and promoted with no overlap inside the warpgroup. 96 outputs do not hold a 128-column re-quantization block,
    // so the epilogue writes the SwiGLU rows in fp32 (row-major [rows][I]) and the e4m3 re-quantization is left to a
    // separate pass; a tile's outputs span one or two weight-scale blocks (the split at output 32 or 64 by tile index
    // mod 4), and the last tile of an expert is ragged when 2I % 192 != 0 (it reads past the expert's weight rows:
    // the weight buffer needs 192 rows of slack after its end; its stores are masked).
    static constexpr bool kWide = kWide_;
    static_assert(!kWide_ || (BLOCK_M_ == 128 && BLOCK_N_ == 192 && !kSplitN_ && kClusterM_ == 1 && !kOverlapPromotion_ && !kHalves_
                              && kStepsPerPromotion_ == 4 && kStagedStore_ == 0 && !kSplitSpill_ && kPair_ == 0 && kRegA_ == 0
                              && !kPairN_ && kRoll_ == 0 && !kStagger_ && kGather_ == 0),
                  "wide: the 128 x 192 tile, one wgmma group per K block");
    // kPairB (v8, session 7, helper mcast7; FP8 GEMM1 halves tile with dynamic units, kClusterM = 2): the two CTAs of a
    // cluster work as one on a PAIR unit. Expert e's tile units (row block, N tile) are paired: two row blocks of e on
    // the same N tile (each CTA loads its own A and one half of the shared 32 KB B tile, multicast into both CTAs: half
    // the L2->SM bytes of B), or, for the last row block of an expert with an odd number of them, that row block on two
    // adjacent N tiles (each CTA loads its own full B: no sharing). Numbered c = 0 .. row_blocks * n_tiles / 2 - 1, pair
    // c covering the tile units 2c, 2c + 1 of the expert-ordered space (n_tiles must be even). Rank 0's producer claims
    // each next pair and hands its index to rank 1's producer through a 2-slot mailbox in rank 1's shared memory; both
    // decode it themselves, so both CTAs run the same sequence of units and stages. Every consumer warp releases a
    // stage in both CTAs (a producer multicasts into its partner's stage only once both have freed it).
    // kPair = 1: as described; 2 (diagnostic `_m128usu2dcn`): the same pair units and barriers, but each CTA loads its
    // full B tile itself (no multicast: isolates the cost of running two CTAs in lockstep); 3 (`_m128usu2dcl`): 1 with
    // the release's two arrives (own and partner CTA) issued by lanes 0 and 1 at once instead of lane 0 in turn.
    static constexpr bool kPairB = kPair_ != 0;
    static constexpr bool kPairMulticast = kPair_ == 1 || kPair_ == 3;
    static constexpr bool kPairLaneRelease = kPair_ == 3;
    static_assert(kPair_ <= 3, "pair mode 0..3");
    // kDynamic (session 6, lead): units are claimed at run time from a global counter (Params::work_counter) instead of
    // the static stride blockIdx.x + i * gridDim.x, and the producer hands each claimed unit to the consumers through
    // shared memory (one unit id per stage, written before the stage's full barrier is armed). With the static stride
    // a CTA's units are fixed in advance, so CTAs whose units differ in length (spill blocks, padding halves) drift
    // apart and the units sharing a weight tile (same expert and N tile, adjacent in the order) stop running together:
    // ncu in the DeepSeek-V3 layer measured GEMM1 reading 1.5x (4096 tokens) to 3.6x (16384) its weights from DRAM.
    // Claimed in order, the units in flight always form one window of the order, so those partners run together.
    // The producer also decodes each unit (tile, expert, real rows: global loads) and hands the consumers the result,
    // 8 words per stage. With the experts' rows known (padding skip), the 128-row tiles group their units by expert:
    // groups of <= kGroupRowBlocks row blocks never span two experts (moe_sched::unit_at's fixed groups split about
    // half the experts at 16384 DeepSeek-V3 tokens, and a split expert's weight slices are read once per part).
    static constexpr bool kDynamic = kDynamic_ != 0;
    // kDynamic 2 (session 18; benchmark variants): the claiming tiles' hand-over without the claim - the producer steps
    // through the static stride (blockIdx.x + i * gridDim.x) and hands each decoded unit to the consumers through the
    // unit slots as a claiming producer does, so the consumers make no lookups of their own (the static tiles' consumers
    // do, v20). Separates the static order from the static tiles' lookups.
    static constexpr bool kStrideHandoff = kDynamic_ == 2;
    static_assert(kDynamic_ <= 2 && (kDynamic_ != 2 || (kGather_ == 0 && kPair_ == 0)), "dynamic units 0, 1 or 2 (2: no gather, no pairs)");
    static constexpr uint32_t UNIT_SLOT_WORDS = 8;
    static constexpr uint32_t UNIT_ID_BYTES = kDynamic_ ? 16 * UNIT_SLOT_WORDS * 4 : 0;
    // kGather (v6, session 6, FP8 GEMM1 128-row tiles; 0 = off): A is not the dispatched (expert-contiguous) copy but
    // the activations quantized once per TOKEN (rows = tokens, same tile-packed layout) plus a slot -> token map; the
    // whole producer warpgroup gathers each stage's 128 rows with 16-byte cp.async copies straight into the swizzled
    // smem image (and the row scales with 4-byte ones), completing on the stage's full barrier by
    // cp.async.mbarrier.arrive.noinc (the B tile keeps its bulk copy). Removes the k-fold scatter of the dispatch.
    // 1 (v6): all 128 producer threads poll the stage's empty barrier; the consumers fence (fence.proxy.async) after
    // each full-barrier wait. 2 (v6.1): one producer warp polls, the other three wait at a named barrier (no issue
    // slots taken from the consumers' warps on the same SM sub-partitions), and no consumer fence (as CUTLASS's SM90
    // cp.async + GMMA mainloop: the mbarrier completion of cp.async makes the data visible to wgmma).
    static constexpr uint32_t kGather = kGather_;
    static constexpr bool kGatherA = kGather_ != 0;
    static_assert(kGather_ <= 2, "gather mode 0, 1 or 2");
    static_assert(!kGatherA || (BLOCK_M_ == 128 && kClusterM_ == 1 && !kSplitN_), "gather: 128-row tiles without clusters");
    // kSplitSpill (session 4, lead): FP8 GEMM1 halves tile, a unit whose 128-row block has at most 64 real rows (an
    // expert's last, spill block) is split along N instead of idling the second warpgroup: both warpgroups multiply
    // rows 0..63, warpgroup w the packed half w (output columns 64w..64w+63), exchange row maxima through shared
    // memory for the per-128 re-quantization and build one staged 64 x 128 store together. Such units then take
    // about half a full unit's tensor time instead of a full one with one warpgroup's wgmma latency exposed.
    static constexpr bool kSplitSpill = kSplitSpill_;
    // kKbUnroll (v5 experiment): unroll factor of the halves tile's K-block loop (lets ptxas interleave the next
    // block's scale loads and barrier wait with the current promotion, as DeepGEMM's unrolled loop does).
    static constexpr uint32_t kKbUnroll = kKbUnroll_;
    // kStagedStore (v5, FP8 GEMM1 halves tile): each warpgroup writes its 64 rows x 128 e4m3 outputs (one contiguous
    // 8 KB run of the output slab) into shared memory and one thread stores them with one 1-D bulk copy, instead of
    // 32 scattered 2-byte global stores per thread (ncu, session 4: LSU-throttled stores in the K = 2048 epilogues).
    // kStagedStore 2 (session 14, GEMM2 with bf16 Y, halves tile): each warpgroup writes its 64 rows x 256 bf16 results
    // into shared memory (rows padded to Y_STAGE_ROW_BYTES: conflict-free 4-byte writes) and its first warp stores them
    // with one 512-byte bulk copy per row, so the stores drain while the warpgroup runs its next unit (the direct
    // stores stall it: fp32 Y vs bf16 Y, twice the bytes, cost the K = 2048 down GEMM ~11 %, kernel-notes v9).
    static constexpr uint32_t kStagedStore = kStagedStore_;
    static constexpr bool kStagedY = kStagedStore_ == 2;
    static constexpr uint32_t Y_STAGE_ROW_BYTES = 256 * 2 + 16;
    static constexpr uint32_t OUT_STAGE_BYTES = kStagedStore_ == 1 ? 2 * 64 * 128 : kStagedStore_ == 2 ? 2 * 64 * Y_STAGE_ROW_BYTES : 0;
    // kUniform (v5, session 4): the consumers' per-wgmma matrix descriptors are built from warp-uniform values only
    // (warpgroup index, shared-memory base and expert broadcast with __shfl_sync; 32-bit low words over a constant
    // high word), so ptxas keeps them in uniform registers. Without it each wgmma cost ~20 vector instructions of
    // 64-bit descriptor arithmetic + R2UR moves, recomputed every K block (ncu, session 4: 2x DeepGEMM's instruction
    // count per FLOP, tensor pipe 50-58 % active against DeepGEMM's 80-93 %).
    static constexpr bool kUniform = kUniform_;
    static constexpr bool kHalves = kHalves_;
    static_assert(kRegA_ == 0 || (kRegA_ <= 2 && kHalves_ && !kSplitSpill_ && kPair_ == 0), "register A: the plain halves tile");
    // kPrefetch (v4.1): the producer looks up its next unit (a dependent global load) before issuing the current
    // unit's copies instead of after them, and GEMM2 loads its rows' routing weights before the mainloop (the halves
    // tile always does the latter).
    static constexpr bool kPrefetch = kPrefetch_;
    static constexpr bool kPrefetchRowWeight = kPrefetch_ || kHalves_;
    // kStagger: the second warpgroup starts two K blocks after the first, so that one warpgroup's epilogue runs while
    // the other still issues wgmmas (otherwise both finish a unit together). Needs epilogues that do not exchange data
    // between the warpgroups: the halves tile, or GEMM2 (the kernel asserts it).
    static constexpr bool kStagger = kStagger_;
    static_assert(!kStagger || (kClusterM_ == 1 && (kHalves_ || (kOverlapPromotion_ && kStepsPerPromotion_ == 4))), "stagger: halves tile or the overlapped split-N loop");
    static_assert(!kHalves || (BLOCK_M_ == 128 && BLOCK_N_ == 256 && !kSplitN_ && (kClusterM_ == 1 || (kPair_ != 0)) && kStepsPerPromotion_ == 4),
                  "the halves tile is 128 rows x 256 packed rows, warpgroups on the row halves");
    static constexpr bool kOverlapPromotion = kOverlapPromotion_ && kStepsPerPromotion_ == 4 && !kHalves;
    static constexpr bool kEarlyNextUnit = kEarlyNextUnit_ && kOverlapPromotion;
    // kLookahead: the consumers look up their next unit while the current unit's first K block computes (else
    // after the epilogue, as before the padding skip; the early-next-unit variant always looks ahead). The halves tile
    // looks up during its first wgmma group (production GEMM2 _m128u since session 16: +1.3..1.5 % on the down shape).
    static constexpr bool kLookahead = kLookahead_ || kEarlyNextUnit;
    static constexpr uint32_t kClusterM = kClusterM_;
    static constexpr uint32_t kStepsPerPromotion = kStepsPerPromotion_;
    static_assert(!kPairN_ || (BLOCK_M_ == 128 && BLOCK_N_ == 128 && !kSplitN_ && kClusterM_ == 2 && kOverlapPromotion_ && !kHalves_
                               && kStepsPerPromotion_ == 4 && kPair_ == 0 && !kDynamic_ && kGather_ == 0 && kStagedStore_ == 0
                               && !kStagger_ && !kEarlyNextUnit_ && !kLookahead_ && !kPrefetch_ && kRegA_ == 0),
                  "N pairs: the static 128 x 128 overlapped tile in 2-CTA clusters");
    static_assert(kClusterM == 1 || (kClusterM == 2 && (BLOCK_M_ == 64 || (kPair_ != 0) || kPairN_)),
                  "a cluster pairs the two 64-row halves of a row block (or, kPairB, two 128-row units)");
    static_assert(!(kPair_ != 0) || (kClusterM_ == 2 && BLOCK_M_ == 128 && !kSplitN_ && kDynamic_ && kUniform_ && kGather_ == 0
                               && !kSplitSpill_ && !kStagger_ && STAGES_ <= 8),
                  "pair units: the dynamic uniform 128-row tile (FP8 halves, or BF16) in 2-CTA clusters, no gather / split spill / stagger");
    static constexpr uint32_t BLOCK_M = BLOCK_M_;
    static constexpr uint32_t BLOCK_N = BLOCK_N_;
    static constexpr uint32_t STAGES = STAGES_;
    static constexpr bool kSplitN = kSplitN_;
    static constexpr uint32_t WG_N = kSplitN ? BLOCK_N / 2 : BLOCK_N;  // packed rows one warpgroup's result covers
    static constexpr uint32_t MMA_N = kHalves ? WG_N / 2 : WG_N;          // N of one wgmma
    static constexpr uint32_t A_STAGE_BYTES = BLOCK_M * kSlabBytes;
    static constexpr uint32_t B_STAGE_BYTES = BLOCK_N * kSlabBytes;
    static constexpr uint32_t SCALE_STAGE_BYTES = 512;  // BLOCK_M fp32 activation scales (FP8), padded
    static constexpr uint32_t BARRIER_BYTES = 2 * STAGES * 8;
    // GEMM1 FP8 row-amax exchange, double buffered (kPairN: + the exchange mbarrier, right after the floats)
    static constexpr uint32_t EXCHANGE_FLOAT_BYTES = 2 * 2 * 64 * 4;
    static constexpr uint32_t EXCHANGE_BYTES = EXCHANGE_FLOAT_BYTES + (kPairN_ ? 16 : 0);
    // 64-row tiles without clusters number their work over the live (not all-padding) 64-row units: a table of
    // uint32 live-units-before per group of kGroupRowBlocks row blocks (+1) and a uint16 live mask per group.
    static constexpr bool kLiveTable = BLOCK_M_ == 64 && kClusterM_ == 1;
    static constexpr uint32_t LIVE_TABLE_BYTES = kLiveTable ? 16384 : 0;
    static constexpr uint32_t kLiveTableGroups = kLiveTable ? (LIVE_TABLE_BYTES - 4) / 6 : 0;  // 2730 groups = 2.8M rows
    // + 1024: the kernel aligns the dynamic shared memory base to 1024 bytes (SW128 atoms) itself.
    static constexpr uint32_t SMEM_BYTES = 1024 + STAGES * (A_STAGE_BYTES + B_STAGE_BYTES + SCALE_STAGE_BYTES) + BARRIER_BYTES
                                           + EXCHANGE_BYTES + LIVE_TABLE_BYTES + OUT_STAGE_BYTES + UNIT_ID_BYTES;
    static_assert(!kDynamic_ || ((kClusterM_ == 1 || (kPair_ != 0)) && !kStagger_ && !kPrefetch_ && !kLookahead_ && !kEarlyNextUnit_ && STAGES_ <= 16),
                  "dynamic units: no clusters, stagger, producer prefetch or consumer lookahead (the next unit comes from the producer)");
    static_assert(kStagedStore_ <= 2 && (kStagedStore_ == 0 || (kHalves_ && BLOCK_M_ == 128)), "staged store: the halves tile");
    static_assert(!kSplitSpill_ || kStagedStore_ == 1, "split spill units: the staged halves tile");
    static_assert(BLOCK_M == 64 || BLOCK_M == 128, "BLOCK_M");
    static_assert(kSplitN ? BLOCK_M == 64 : BLOCK_M == 128, "one 64-row wgmma per warpgroup");
    static_assert(SMEM_BYTES <= 227 * 1024, "shared memory");
};

// Row blocks of 128 (the layout's) are grouped by kGroupRowBlocks: inside a group, consecutive work units walk the
// group's M units first and then the N tiles, so the CTAs running at one time share weight tiles (one expert's) and
// A row blocks in L2 instead of streaming the whole A per N tile.
constexpr uint32_t kGroupRowBlocks = 8;

struct WorkUnit {
    uint32_t m_unit;  // BLOCK_M-row unit index (row = m_unit * BLOCK_M)
    uint32_t n_tile;  // BLOCK_N tile index
};

// Unit r (0 <= r < rbs * num_n_tiles) of one expert's units (its rbs row blocks x the N tiles) in Tile::kGroupOrder 1:
// floor(rbs / kGroupRowBlocks) chunks of row blocks (at least one), the first rbs % chunks of them one row block longer
// (kGroupRowBlocks .. 2 kGroupRowBlocks - 1 row blocks each), M first inside a chunk.
__device__ __forceinline__ WorkUnit expert_unit_at(uint32_t r, uint32_t rbs, uint32_t num_n_tiles) {
    const uint32_t chunks = max(1u, rbs / kGroupRowBlocks);
    const uint32_t base = rbs / chunks, longer = rbs - base * chunks;  // the first `longer` chunks: base + 1 blocks
    const uint32_t longer_units = longer * (base + 1) * num_n_tiles;
    uint32_t first, in_group, r2;
    if (r < longer_units) {
        const uint32_t c = r / ((base + 1) * num_n_tiles);
        first = c * (base + 1);
        in_group = base + 1;
        r2 = r - c * (base + 1) * num_n_tiles;
    } else {
        const uint32_t r1 = r - longer_units, c = r1 / (base * num_n_tiles);
        first = longer * (base + 1) + c * base;
        in_group = base;
        r2 = r1 - c * base * num_n_tiles;
    }
    return WorkUnit{first + r2 % in_group, r2 / in_group};
}

__device__ __forceinline__ WorkUnit unit_at(uint32_t u, uint32_t num_m_units, uint32_t num_n_tiles, uint32_t group_m_units) {
    const uint32_t per_group = group_m_units * num_n_tiles;
    const uint32_t g = u / per_group, r = u - g * per_group;
    const uint32_t first = g * group_m_units;
    const uint32_t in_group = min(group_m_units, num_m_units - first);
    return WorkUnit{first + r % in_group, r / in_group};
}

}  // namespace moe_sched
