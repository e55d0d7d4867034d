// Small-batch ("decode") path of the MoE layer: three kernels (and moe_combine) instead of the dozen of the grouped
// path, for launches of at most 16 or 32 tokens, where the layer is a weight stream and the grouped GEMMs' 128-row
// tiles hold 1-2 real rows.
//
//   moe_decode_route_tN  router logits (fp64 SIMT: every product exact, partial sums of 256-K chunks added in a fixed
//                        order, rounded once to fp32), the activations for GEMM1 (FP8: e4m3 per token per 128 channels
//                        with fp32 scales, the recipe; BF16: rounded to nearest even), then - in the last CTA to finish,
//                        found with a counter (no grid barrier) - top-k (moe_topk.cuh, the CPU's keys and tie rule; one
//                        token per warp) and the plan: the used experts in index order, each with its routing entries
//                        (t*k + j) in ascending order (deterministic), and the per-expert counts.
//   moe_decode_gemm1_*   for every used expert (and the shared expert, as one more "expert" holding all T tokens): 16
//                        packed W1 rows (8 gate + 8 up rows of the same output columns) per warp unit, streamed once
//                        from HBM (cp.async into a lane-private ring of DEC_STAGES slabs per warp, running ahead across
//                        the warp's units) into mma.sync fragments, times the expert's tokens as the mma's N side (8
//                        tokens per n8 tile), fp32 accumulation; SwiGLU in registers. FP8: the four k32 mmas of a
//                        128-wide K block accumulate in fp32 (sm_90 executes e4m3 mma.sync as f16 HMMAs on converted
//                        operands: exact products, fp32 sums), then are scaled by activation x weight block scale into
//                        the accumulators; the SwiGLU output is re-quantized per token per 128 columns by the last of
//                        the 16 warp units of each 128-column block (counter), so the amax covers the block.
//   moe_decode_gemm2_*   W2 rows the same way (16 output channels per unit) times the SwiGLU rows, times the routing
//                        weight (shared expert: 1 or Qwen2-MoE's gate), into Y rows by routing entry; then
//                        moe_combine (moe_combine.cu, rows by entry) sums every token's k rows in selection order plus
//                        the shared row, in fp32, without atomics on values. (Until session 11 the warp completing each
//                        16-channel tile combined it inside GEMM2; that put a combine after the launch's last units:
//                        call e measured GEMM2 without it 39.5 vs 46 us on Qwen3 FP8 16 tokens.)
//
// Weights are read in the GEMMs' packed layouts (grouped_gemm.cuh): per expert, K cut into 128-byte slabs, every row of
// a slab 128 bytes with its 16-byte chunk c at position c ^ (row % 8). A unit's 16 rows start at a multiple of 16, so
// both rows a thread holds (r, r + 8) share the swizzle. The mma fragments take the K elements in an order of our
// choosing as long as A and B agree: thread (g = lane / 4, q = lane % 4) loads 16-byte chunks q and q + 4 of each slab
// of rows g and g + 8, and the same chunks of its token's activation row; bytes 0-7 of a chunk feed one mma (a0/a2 =
// row g, a1/a3 = row g + 8, b0/b1 = the token), bytes 8-15 the next. Counters are reset by the unit that finishes
// them, so every launch (and graph replay) starts from zero.
#include <type_traits>
#include "moe_common.cuh"
#include "moe_topk.cuh"
#include "grouped_gemm_sm90.cuh"

#define DEC_WARPS 8
#define DEC_THREADS (DEC_WARPS * 32)
#define DEC_KC 256     // router logits: K chunk of one CTA (more CTAs: the chunk's fp64 x reads bound each CTA)
// route kernel: warps per CTA, one router row each, and in the last CTA one token's top-k each (session 9, call k: 16
// instead of 8 warps - route 21.7 -> 19.1 us Qwen3 FP8, 49.7 -> 43.5 us DeepSeek-V3 FP8 at 16 tokens, from the top-k
// phase; the plan phase stayed ~5.6 us with its entries placed by all threads: docs/kernel-notes.md, calls j, l, m)
#define DEC_ROUTE_WARPS 16
#define DEC_ROUTE_THREADS (DEC_ROUTE_WARPS * 32)
#define DEC_EG DEC_ROUTE_WARPS  // router logits: router rows of one CTA (one per warp)
#define DEC_STAGES 5   // 2 KB weight slabs in flight per warp (its shared-memory ring; 6 measured no faster)
// BF16 fills each warp's ring with one 2-KB bulk copy per slab (the bulk copy engine, completion on a per-stage
// mbarrier; lane 0 issues it) instead of four 16-byte cp.async per lane: session 11 call b measured it 3-4 % faster
// for BF16 and 6-16 % slower for FP8 (whose lanes then read the slab's swizzled layout), so FP8 keeps cp.async. The
// barriers sit after the rings (MoeDecode.RING_BARRIER_BYTES) for both.
#define DEC_BARRIER_BYTES 1024  // DEC_WARPS x DEC_STAGES mbarriers of 8 bytes, padded
static_assert(DEC_WARPS * DEC_STAGES * 8 <= DEC_BARRIER_BYTES, "decode ring barriers");

namespace moe_dec {

constexpr unsigned FULL = 0xffffffffu;

// d = A(16x32 e4m3) . B(32x8 e4m3) + d, fp32 accumulators (sm_90 runs it as f16 HMMAs on converted operands).
__device__ __forceinline__ void mma_e4m3(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// d += A(16x16 bf16) . B(16x8 bf16), fp32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// 16 bytes global -> shared, asynchronous, L1 bypassed, L2 fetching 256-byte granules (the row pair's other chunks).
// Weights are read once per layer: L2 evict-first, so the stream does not push out what the layer reads again - its
// kernels' code, the plan, activations, SwiGLU and Y rows (session 11, call d: route 18.8 -> 15.6 us, Qwen3 FP8 16
// tokens 0.142 -> 0.135 ms device time; the router's weights are loaded evict-first too, so a benchmark repeating one
// layer gains nothing a model's next layer would not).
__device__ __forceinline__ void cp_async16(uint32_t smem, const void* gmem, uint64_t policy) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint.L2::256B [%0], [%1], 16, %2;" ::"r"(smem), "l"(gmem), "l"(policy) : "memory");
}
__device__ __forceinline__ uint64_t evict_first_policy() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}
// `bytes` contiguous bytes global -> shared by the bulk copy engine, completing on mbarrier `bar`, L2 evict-first.
__device__ __forceinline__ void bulk_copy_evict_first(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar, uint64_t policy) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;"
               ::"r"(dst), "l"(src), "r"(bytes), "r"(bar), "l"(policy) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }

// The plan the route kernel leaves (global), copied into each GEMM CTA's shared memory at start.
struct Plan {
  const int* num_used;     // U
  const int* used_expert;  // [U] expert ids, ascending
  const int* used_off;     // [U] first index into entries
  const int* used_cnt;     // [U] entries of the expert
  const int* entries;      // [T * k] routing entries t * k + j, grouped by expert, ascending within
};
struct SmemPlan {
  int U;
  const int *expert, *off, *cnt, *entries;
};

// Copies the plan into shared memory (U <= max_used, T * k entries); every thread of the CTA must call it.
__device__ __forceinline__ SmemPlan load_plan(const Plan& p, int* smem, int max_used, int n_entries) {
  const int U = min(*p.num_used, max_used);
  int* ex = smem;
  int* of = ex + max_used;
  int* ct = of + max_used;
  int* en = ct + max_used;
  for (int i = threadIdx.x; i < U; i += DEC_THREADS) { ex[i] = p.used_expert[i]; of[i] = p.used_off[i]; ct[i] = p.used_cnt[i]; }
  for (int i = threadIdx.x; i < n_entries; i += DEC_THREADS) en[i] = p.entries[i];
  __syncthreads();
  return SmemPlan{U, ex, of, ct, en};
}

// A warp unit's expert: routed slot < U, or the shared expert (slot U, entries = tokens 0..T-1).
struct UnitExpert {
  bool shared;
  int slot, expert, cnt;
  const int* ent;
  __device__ __forceinline__ int entry(int i) const { return shared ? i : ent[i]; }
};

__device__ __forceinline__ UnitExpert unit_expert(const SmemPlan& p, int slot, int T) {
  UnitExpert x;
  x.shared = slot >= p.U;
  x.slot = slot;
  if (x.shared) { x.expert = 0; x.cnt = T; x.ent = nullptr; }
  else { x.expert = p.expert[slot]; x.cnt = p.cnt[slot]; x.ent = p.entries + p.off[slot]; }
  return x;
}

// Where a unit's 16 weight rows are: expert matrix base, its row count (slab stride), first row, 128-byte K slabs.
struct Geometry {
  const uint8_t* w;
  uint32_t rows, row0, slabs;
};

// The warp's weight stream: every slab of every unit the warp owns (units warp0, warp0 + W, ...), in order, through a
// ring of DEC_STAGES slabs in shared memory - FP8: lane-private (each lane reads back only the 64 bytes it copied, so
// no barrier is needed: cp.async.wait_group per thread); BF16: one bulk copy per slab, waited for on its stage's
// mbarrier. The producer runs DEC_STAGES - 1 slabs ahead of the consumer, across unit boundaries, so a unit's epilogue
// and the next unit's set-up overlap the stream.
template <class GeomFn>
struct WeightStream {
  static constexpr bool kBulk = GeomFn::kBulk;  // BF16: one bulk copy per slab (lane 0), mbarrier per stage
  GeomFn geom;
  uint32_t unit, slab, job, total, step;
  Geometry g;
  bool live;
  uint32_t ring;  // shared address of this warp's ring
  uint32_t bars;  // BF16 (bulk copies): shared address of this warp's DEC_STAGES ring mbarriers

  __device__ __forceinline__ void start(uint32_t first, uint32_t total_units, uint32_t stride, uint32_t ring_addr, uint32_t bars_addr) {
    unit = first; slab = 0; job = 0; total = total_units; step = stride; ring = ring_addr; bars = bars_addr;
    if constexpr (GeomFn::kBulk) {
      if ((threadIdx.x & 31) == 0) {
        for (int i = 0; i < DEC_STAGES; i++) sm90::mbar_init(bars + 8 * i, 1);
        sm90::fence_barrier_init();
      }
      __syncwarp();
    }
    live = unit < total;
    if (live) g = geom(unit);
#pragma unroll 1
    for (int i = 0; i < DEC_STAGES - 1; i++) { issue(); cp_async_commit(); }
  }

  // Copies the next slab (rows g and g + 8 of the lane's group, chunks q and q + 4) into its ring slot.
  __device__ __forceinline__ void issue() {
    if (!live) return;
    const uint32_t lane = threadIdx.x & 31, gq = lane >> 2, q = lane & 3;
    if constexpr (GeomFn::kBulk) {
      // the stage this copy fills was read one slab ago by every lane: the warp barrier orders those reads first
      __syncwarp();
      if (lane == 0) {
        const uint32_t st = job % DEC_STAGES;
        sm90::mbar_arrive_expect_tx(bars + 8 * st, 2048);
        bulk_copy_evict_first(ring + st * 2048, g.w + (size_t)slab * g.rows * 128 + (size_t)g.row0 * 128, 2048, bars + 8 * st,
                              evict_first_policy());
      }
      advance();
      return;
    }
    const uint32_t off0 = ((q ^ gq) & 7) * 16, off1 = (((q + 4) ^ gq) & 7) * 16;  // row % 8 == gq for both rows
    const uint8_t* r_lo = g.w + (size_t)slab * g.rows * 128 + (size_t)(g.row0 + gq) * 128;
    const uint8_t* r_hi = r_lo + 8 * 128;
    const uint32_t base = ring + (job % DEC_STAGES) * 2048 + lane * 16;
    const uint64_t policy = evict_first_policy();
    cp_async16(base, r_lo + off0, policy);
    cp_async16(base + 512, r_lo + off1, policy);
    cp_async16(base + 1024, r_hi + off0, policy);
    cp_async16(base + 1536, r_hi + off1, policy);
    advance();
  }

  __device__ __forceinline__ void advance() {
    job++;
    if (++slab == g.slabs) {
      slab = 0;
      unit += step;
      live = unit < total;
      if (live) g = geom(unit);
    }
  }
};

// The activation side of a unit: brow[nt] = the activation row this thread's column (nt * 8 + g) reads, -1 past the
// unit's tokens; srow[nt][c] = the activation row of accumulator column nt * 8 + 2q + c (FP8 scales), -1 past them.
template <bool FP8, int NT>
struct UnitOperands {
  const uint8_t* act;      // activation rows [*, K], row-major, esize bytes per element
  const float* act_scale;  // FP8: [*, K / 128]
  const float* w_scale_lo; // FP8: weight block scales [K / 128] of the unit's rows 0..7
  const float* w_scale_hi; // FP8: of rows 8..15
  uint32_t K;
  int brow[NT];
  int srow[NT][2];
  int ntiles;
};

// The activation fragments and (FP8) scales one slab of a unit multiplies with: global loads, issued a slab ahead of
// their use in long units (unit_mma). The first conversion of a slab stays the GEMMs' largest stall either way (the
// loads seem to queue behind the warp's own weight stream); ahead measured 2-4 % faster on long units only.
template <bool FP8, int NT>
struct SlabOperands {
  uint4 b0[NT], b1[NT];
  float sa0[NT], sa1[NT];  // FP8: activation scales of accumulator columns 2q, 2q + 1
  float wlo, whi;          // FP8: weight block scales of rows 0..7, 8..15

  __device__ __forceinline__ void load_scales(const UnitOperands<FP8, NT>& u, uint32_t s) {
    wlo = FP8 ? u.w_scale_lo[s] : 1.0f;
    whi = FP8 ? u.w_scale_hi[s] : 1.0f;
  }

  __device__ __forceinline__ void load_tile(const UnitOperands<FP8, NT>& u, uint32_t s, int nt) {
    constexpr uint32_t ESZ = FP8 ? 1 : 2;
    const uint32_t q = threadIdx.x & 3;
    b0[nt] = make_uint4(0, 0, 0, 0);
    b1[nt] = make_uint4(0, 0, 0, 0);
    sa0[nt] = 0.0f;
    sa1[nt] = 0.0f;
    if (nt >= u.ntiles) return;
    if (u.brow[nt] >= 0) {
      const uint8_t* bp = u.act + (size_t)u.brow[nt] * u.K * ESZ + (size_t)s * 128;
      b0[nt] = *(const uint4*)(bp + q * 16);
      b1[nt] = *(const uint4*)(bp + (q + 4) * 16);
    }
    if (FP8) {
      if (u.srow[nt][0] >= 0) sa0[nt] = u.act_scale[(size_t)u.srow[nt][0] * (u.K / 128) + s];
      if (u.srow[nt][1] >= 0) sa1[nt] = u.act_scale[(size_t)u.srow[nt][1] * (u.K / 128) + s];
    }
  }

  __device__ __forceinline__ void load(const UnitOperands<FP8, NT>& u, uint32_t s) {
    load_scales(u, s);
#pragma unroll
    for (int nt = 0; nt < NT; nt++) load_tile(u, s, nt);
  }
};

// One slab of a unit: waits for its weights in the ring, multiplies them with `use` into acc (loading `next`'s operands
// first when given), then issues the stream's next slab.
template <bool FP8, int NT, class S>
__device__ __forceinline__ void slab_mma(S& stream, uint32_t s, const UnitOperands<FP8, NT>& u, float (&acc)[NT][4],
                                         uint32_t& consumed, SlabOperands<FP8, NT>& use, SlabOperands<FP8, NT>* next,
                                         uint32_t next_s) {
  const uint32_t lane = threadIdx.x & 31;
  uint32_t addr[4];
  if constexpr (S::kBulk) {
    // the slab as the bulk copy left it, in its global layout: row r at r * 128, its chunk c at (c ^ (r % 8)) * 16
    const uint32_t st = consumed % DEC_STAGES, gq = lane >> 2, q = lane & 3;
    sm90::mbar_wait(stream.bars + 8 * st, (consumed / DEC_STAGES) & 1);
    const uint32_t off0 = ((q ^ gq) & 7) * 16, off1 = (((q + 4) ^ gq) & 7) * 16;
    const uint32_t lo = stream.ring + st * 2048 + gq * 128, hi = lo + 8 * 128;
    addr[0] = lo + off0; addr[1] = lo + off1; addr[2] = hi + off0; addr[3] = hi + off1;
  } else {
    cp_async_wait<DEC_STAGES - 2>();
    const uint32_t base = stream.ring + (consumed % DEC_STAGES) * 2048 + lane * 16;
#pragma unroll
    for (int i = 0; i < 4; i++) addr[i] = base + i * 512;
  }
  uint4 a[4];
#pragma unroll
  for (int i = 0; i < 4; i++) asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];"
                                           : "=r"(a[i].x), "=r"(a[i].y), "=r"(a[i].z), "=r"(a[i].w) : "r"(addr[i]));
  consumed++;
  if (next) next->load(u, next_s);
  else use.load_scales(u, s);
#pragma unroll
  for (int nt = 0; nt < NT; nt++) {
    if (nt < u.ntiles) {
      if (!next) use.load_tile(u, s, nt);  // loaded where used, as few registers live as possible
      const uint4 b0 = use.b0[nt], b1 = use.b1[nt];
      if (FP8) {
        // the slab is one 128-wide K block: its four k32 products accumulate in fp32 (f16 HMMAs on sm_90), then
        // are scaled by activation x weight block scale into the accumulators
        float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        mma_e4m3(t, a[0].x, a[2].x, a[0].y, a[2].y, b0.x, b0.y);
        mma_e4m3(t, a[0].z, a[2].z, a[0].w, a[2].w, b0.z, b0.w);
        mma_e4m3(t, a[1].x, a[3].x, a[1].y, a[3].y, b1.x, b1.y);
        mma_e4m3(t, a[1].z, a[3].z, a[1].w, a[3].w, b1.z, b1.w);
        acc[nt][0] = fmaf(t[0], use.wlo * use.sa0[nt], acc[nt][0]);
        acc[nt][1] = fmaf(t[1], use.wlo * use.sa1[nt], acc[nt][1]);
        acc[nt][2] = fmaf(t[2], use.whi * use.sa0[nt], acc[nt][2]);
        acc[nt][3] = fmaf(t[3], use.whi * use.sa1[nt], acc[nt][3]);
      } else {
        mma_bf16(acc[nt], a[0].x, a[2].x, a[0].y, a[2].y, b0.x, b0.y);
        mma_bf16(acc[nt], a[0].z, a[2].z, a[0].w, a[2].w, b0.z, b0.w);
        mma_bf16(acc[nt], a[1].x, a[3].x, a[1].y, a[3].y, b1.x, b1.y);
        mma_bf16(acc[nt], a[1].z, a[3].z, a[1].w, a[3].w, b1.z, b1.w);
      }
    }
  }
  stream.issue();
  cp_async_commit();
}

// Units of at least this many slabs load each slab's operands one slab ahead (H200, 16 tokens: DeepSeek-V3 FP8 -4 %,
// Mixtral -2 %; Qwen3's 6- and 16-slab FP8 units measured ~2 % slower that way, so short units load in place).
#define DEC_AHEAD_MIN_SLABS 32

// One unit: consumes its `slabs` slabs from the stream (issuing one more per slab consumed) into acc. With the 16-token
// tile and a long unit the next slab's operands are loaded before this one's mmas, into the other of two register
// sets (slabs taken two at a time, so no copy waits for the loads in flight); the 32-token tile has no registers for a
// second set.
template <bool FP8, int NT, class S>
__device__ __forceinline__ void unit_mma(S& stream, uint32_t slabs, const UnitOperands<FP8, NT>& u, float (&acc)[NT][4],
                                         uint32_t& consumed) {
#pragma unroll
  for (int nt = 0; nt < NT; nt++)
#pragma unroll
    for (int i = 0; i < 4; i++) acc[nt][i] = 0.0f;
  if (NT <= 2 && slabs >= DEC_AHEAD_MIN_SLABS) {
    SlabOperands<FP8, NT> even, odd;
    even.load(u, 0);
#pragma unroll 1
    for (uint32_t s = 0; s < slabs; s += 2) {
      // the last slab's "next" reloads itself (L1 hits, unused)
      slab_mma(stream, s, u, acc, consumed, even, &odd, s + 1 < slabs ? s + 1 : s);
      if (s + 1 < slabs) slab_mma(stream, s + 1, u, acc, consumed, odd, &even, s + 2 < slabs ? s + 2 : s + 1);
    }
  } else {
    SlabOperands<FP8, NT> ops;
#pragma unroll 1
    for (uint32_t s = 0; s < slabs; s++) slab_mma(stream, s, u, acc, consumed, ops, (SlabOperands<FP8, NT>*)nullptr, 0u);
  }
}

// A warp's or CTA's global writes are published at a counter by one thread's acq_rel atomic after the group's
// barrier (release is cumulative over the writes the barrier ordered before it; acquire in the last arriver), not by
// a fence in every thread: the fence compiled to MEMBAR.SC.GPU, the atomic to one MEMBAR.ALL.GPU. Session 9: Mixtral
// FP8 16 tokens -1..2 % and DeepSeek-V3 FP8 -0.7..1 % in two calls; Qwen3 FP8 0.159-0.163 -> 0.153-0.155 ms in call b
// but within its +-3 % noise in call f. With no fence at all (not correct, a bound) Qwen3 0.147-0.151 ms. A
// release-only atomic with the acquire fence in the last arriver (no L1 invalidation per unit) measured no faster.
__device__ __forceinline__ int arrive_add(int* counter) {
  int old;
  asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;" : "=r"(old) : "l"(counter) : "memory");
  return old;
}

// Arrives at a counter after this CTA's global writes (every thread calls it); true in the CTA that arrives last
// (target arrivals), whose threads then see every arrived CTA's writes (read them with __ldcg) and reset the counter
// for the next launch.
__device__ __forceinline__ bool cta_arrive_last(int* counter, int target) {
  __shared__ int cta_last;
  __syncthreads();
  if (threadIdx.x == 0) cta_last = arrive_add(counter) == target - 1;
  __syncthreads();
  return cta_last;
}

// Arrives at a counter after this warp's global writes; true in the warp that arrives last (target arrivals), which
// then sees every arrived warp's writes (read them with __ldcg) and resets the counter for the next launch.
__device__ __forceinline__ bool arrive_last(int* counter, int target) {
  __syncwarp();
  int old = 0;
  if ((threadIdx.x & 31) == 0) old = arrive_add(counter);
  old = __shfl_sync(FULL, old, 0);
  if (old != target - 1) return false;
  __syncwarp();  // orders the other lanes' reads after lane 0's acquire
  if ((threadIdx.x & 31) == 0) *counter = 0;
  return true;
}

// ---------------------------------------------------------------------------------------------------------------------
// route: logits, GEMM1 activations, top-k, plan
// ---------------------------------------------------------------------------------------------------------------------
// The warp's TCAP per-lane partial sums (one per token) summed over the 32 lanes by recursive halving: at each of the
// first log2(TCAP) levels a lane keeps half of its values and receives its partner's other half (TCAP / 2 + ... + 1
// shuffles instead of 5 x TCAP for a butterfly per token), the remaining levels are a plain butterfly. Returns the
// token whose full sum acc[0] now holds; lanes whose bits at the butterfly levels are zero hold distinct tokens.
// Fixed order per token, so run to run the same. (Session 8: ncu put 35 % of the route kernel's stall samples on the
// per-token butterflies.)
template <int TCAP, int L = 0>
__device__ __forceinline__ int token_sums(double (&acc)[TCAP], int lane, int token = 0) {
  static_assert(TCAP == 16 || TCAP == 32, "16 or 32 tokens");
  constexpr int o = 16 >> L, c = TCAP >> L;  // this level's lane offset, values each lane holds before it
  if constexpr (c > 1) {
    constexpr int h = c / 2;
    const bool upper = (lane & o) != 0;
#pragma unroll
    for (int i = 0; i < h; i++) {
      const double send = upper ? acc[i] : acc[i + h];
      const double keep = upper ? acc[i + h] : acc[i];
      acc[i] = keep + __shfl_xor_sync(FULL, send, o);
    }
    if (upper) token += h;
  } else {
    acc[0] += __shfl_xor_sync(FULL, acc[0], o);
  }
  if constexpr (L < 4) return token_sums<TCAP, L + 1>(acc, lane, token);
  return token;
}

template <int TCAP>
__device__ __forceinline__ void route(
    const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
    double* __restrict__ partial, float* __restrict__ logits, int* __restrict__ topk_expert,
    float* __restrict__ topk_weight, float* __restrict__ shared_row_weight, uint8_t* __restrict__ act,
    float* __restrict__ act_scale, int* __restrict__ group_counter, int* __restrict__ route_counter,
    int* __restrict__ expert_count, int* __restrict__ num_used, int* __restrict__ used_expert, int* __restrict__ used_off,
    int* __restrict__ used_cnt, int* __restrict__ entries, const int* __restrict__ num_tokens, int H, int n_out, int E,
    int k, int scoring, int n_group, int topk_group, int norm_topk, float scaling, int shared_gated, int fp8,
    int topk_warps) {
  extern __shared__ __align__(16) float dec_smem[];
  __shared__ int chosen[DEC_ROUTE_WARPS][32];
  __shared__ int plan_cnt[MOE_MAX_EXPERTS], plan_pos[MOE_MAX_EXPERTS];
  __shared__ int selected[TCAP * 32];  // the routing entries' experts (t * k + j), for the plan without global reads
  const int T = min(*num_tokens, TCAP);
  const int kc = blockIdx.x, grp = blockIdx.y;
  const int k0 = kc * DEC_KC, klen = min(DEC_KC, H - k0);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  // this warp's router row over the chunk: all 16 loads issued before anything waits on them (one DRAM latency)
  const int e = grp * DEC_EG + warp;
  float wv[DEC_KC / 32];
#pragma unroll
  for (int i = 0; i < DEC_KC / 32; i++) {
    const int c = lane + 32 * i;
    wv[i] = (e < n_out && c < klen) ? __ldcs(&w[(size_t)e * H + k0 + c]) : 0.0f;  // read once per layer: evict first
  }

  // x[0..T)[k0, k0 + klen) -> shared memory in fp64: every load in flight before the first store, and each value
  // widened once per CTA instead of once per router row (the F2F conversions were the logit loop's bottleneck)
  double* xs = reinterpret_cast<double*>(dec_smem);
  {
    constexpr int V4 = DEC_KC / 4, XB = TCAP * V4 / DEC_ROUTE_THREADS < 8 ? TCAP * V4 / DEC_ROUTE_THREADS : 8;  // float4 per thread per batch
    const int v4 = klen / 4;
#pragma unroll 1
    for (int b0 = 0; b0 < TCAP * V4; b0 += XB * DEC_ROUTE_THREADS) {
      float4 xv[XB];
#pragma unroll
      for (int r = 0; r < XB; r++) {
        const int i = b0 + threadIdx.x + r * DEC_ROUTE_THREADS, t = i / V4, c = i % V4;
        if (t < T && c < v4) xv[r] = ((const float4*)(x + (size_t)t * H + k0))[c];
      }
#pragma unroll
      for (int r = 0; r < XB; r++) {
        const int i = b0 + threadIdx.x + r * DEC_ROUTE_THREADS, t = i / V4, c = i % V4;
        if (t < T && c < v4) {
          double2* d = reinterpret_cast<double2*>(xs + t * DEC_KC + 4 * c);
          d[0] = make_double2(xv[r].x, xv[r].y);
          d[1] = make_double2(xv[r].z, xv[r].w);
        }
      }
    }
  }
  __syncthreads();

  // GEMM1's activations: the 128-channel blocks j of this chunk with j % gridDim.y == grp, every token
  {
    const int nb = klen / 128, gy = gridDim.y;
    const int nj = grp < nb ? (nb - grp + gy - 1) / gy : 0;
    for (int item = warp; item < nj * T; item += DEC_ROUTE_WARPS) {
      const int j = grp + (item / T) * gy, t = item % T;
      const double2* xd = reinterpret_cast<const double2*>(xs + t * DEC_KC + j * 128 + lane * 4);
      const double2 lo2 = xd[0], hi2 = xd[1];
      const float4 v = make_float4((float)lo2.x, (float)lo2.y, (float)hi2.x, (float)hi2.y);  // exact: widened floats
      const size_t col = (size_t)k0 + j * 128 + lane * 4;
      if (fp8) {
        const float amax = moe_warp_max(fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
        const float mult = moe_fp8_multiplier(amax);
        const unsigned qv = (unsigned)moe_to_e4m3(v.x * mult) | ((unsigned)moe_to_e4m3(v.y * mult) << 8)
                          | ((unsigned)moe_to_e4m3(v.z * mult) << 16) | ((unsigned)moe_to_e4m3(v.w * mult) << 24);
        *(unsigned*)(act + (size_t)t * H + col) = qv;
        if (lane == 0) act_scale[(size_t)t * (H / 128) + (k0 / 128 + j)] = moe_fp8_scale(amax);
      } else {
        __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
        uint2 b;
        b.x = *(const unsigned*)&lo;
        b.y = *(const unsigned*)&hi;
        *(uint2*)(act + ((size_t)t * H + col) * 2) = b;
      }
    }
  }

  // logits partial sums: router row e (one per warp) over this K chunk, all tokens, fp64 (products exact)
  if (e < n_out) {
    double acc[TCAP];
#pragma unroll
    for (int t = 0; t < TCAP; t++) acc[t] = 0.0;
#pragma unroll
    for (int i = 0; i < DEC_KC / 32; i++) {
      const int c = lane + 32 * i;
      if (c < klen) {
        const double wd = (double)wv[i];
#pragma unroll
        for (int t = 0; t < TCAP; t++)
          if (t < T) acc[t] = fma(wd, xs[t * DEC_KC + c], acc[t]);
      }
    }
    const int t = token_sums<TCAP>(acc, lane);  // tokens past T summed zeros
    if ((lane & (32 / TCAP - 1)) == 0 && t < T) partial[((size_t)kc * TCAP + t) * n_out + e] = acc[0];
  }

  // the last CTA of this row group adds the K chunks in order and rounds once
  if (!cta_arrive_last(&group_counter[grp], (int)gridDim.x)) return;
  for (int i = threadIdx.x; i < T * DEC_EG; i += DEC_ROUTE_THREADS) {
    const int t = i / DEC_EG, r = grp * DEC_EG + i % DEC_EG;
    if (r < n_out) {
      double s = 0.0;
      for (int z0 = 0; z0 < (int)gridDim.x; z0 += 8) {  // 8 loads in flight, added in chunk order
        double v[8];
#pragma unroll
        for (int i = 0; i < 8; i++)
          v[i] = z0 + i < (int)gridDim.x ? __ldcg(&partial[((size_t)(z0 + i) * TCAP + t) * n_out + r]) : 0.0;
#pragma unroll
        for (int i = 0; i < 8; i++)
          if (z0 + i < (int)gridDim.x) s += v[i];
      }
      logits[(size_t)t * n_out + r] = (float)s;
    }
  }
  if (threadIdx.x == 0) group_counter[grp] = 0;

  // the last row group's CTA routes every token and writes the plan
  if (!cta_arrive_last(route_counter, (int)gridDim.y)) return;
  if (threadIdx.x == 0) *route_counter = 0;
  for (int i = threadIdx.x; i < E; i += DEC_ROUTE_THREADS) plan_cnt[i] = 0;
  __syncthreads();
  {
    // per warp: key, score [E], logits row [n_out] (floats), eligibility [E] (bytes)
    const int per_warp = 2 * E + n_out + (E + 3) / 4;
    float* key = dec_smem + warp * per_warp;
    float* score = key + E;
    float* row = score + E;
    unsigned char* okw = (unsigned char*)(row + n_out);
    // topk_warps (<= DEC_ROUTE_WARPS): as many warps as the scratch fits in shared memory, one token each at a time
    for (int t = warp; warp < topk_warps && t < T; t += topk_warps) {
      for (int i = lane; i < n_out; i += 32) row[i] = __ldcg(&logits[(size_t)t * n_out + i]);
      __syncwarp();
      moe_topk_token(row, bias, t, topk_expert, topk_weight, shared_row_weight, E, k, scoring, n_group, topk_group,
                     norm_topk, scaling, shared_gated, key, score, okw, chosen[warp]);
      __syncwarp();
      if (lane < k) {  // counts per expert: integer shared-memory atomics, the same totals in any order
        const int ex = chosen[warp][lane];
        selected[t * k + lane] = ex;
        atomicAdd(&plan_cnt[ex], 1);
      }
      __syncwarp();
    }
  }
  __syncthreads();
  // plan, from the counts and experts the top-k warps left in shared memory: used experts in index order (one warp's
  // scan), then every routing entry placed at its expert's offset + its rank among the entries of that expert with a
  // lower index (entries grouped by expert, ascending: deterministic, no atomics), ranked per 32-entry chunk
  // (match_any) plus the same expert's counts in the earlier chunks
  const int n = T * k;
  if (warp == 0) {
    const int per = (E + 31) / 32, lo = min(E, lane * per), hi = min(E, lo + per);
    int nu = 0, ne = 0;
    for (int i = lo; i < hi; i++) { const int c = plan_cnt[i]; nu += c > 0; ne += c; }
    int inu = nu, ine = ne;  // inclusive scans over lanes
    for (int o = 1; o < 32; o <<= 1) {
      const int a = __shfl_up_sync(FULL, inu, o), b = __shfl_up_sync(FULL, ine, o);
      if (lane >= o) { inu += a; ine += b; }
    }
    int u = inu - nu, off = ine - ne;
    for (int i = lo; i < hi; i++) {
      const int c = plan_cnt[i];
      expert_count[i] = c;
      if (c > 0) { used_expert[u] = i; used_off[u] = off; used_cnt[u] = c; plan_pos[i] = off; u++; off += c; }
    }
    if (lane == 31) *num_used = inu;
  }
  // chunk counts (in the top-k scratch, free now: chunks x E ints fit, MoeDecodeSizesTest): warp w counts, per
  // expert, the entries of its 32-entry chunks (w, w + W, ...) - zeroed first
  int* chunk_cnt = reinterpret_cast<int*>(dec_smem);
  const int chunks = (n + 31) / 32;
  for (int i = threadIdx.x; i < chunks * E; i += DEC_ROUTE_THREADS) chunk_cnt[i] = 0;
  __syncthreads();
  for (int c = warp; c < chunks; c += DEC_ROUTE_WARPS) {
    const int i = c * 32 + lane;
    const int ex = i < n ? selected[i] : -1;
    const unsigned m = __match_any_sync(FULL, ex);
    if (ex >= 0 && lane == __ffs(m) - 1) chunk_cnt[c * E + ex] = __popc(m);
  }
  __syncthreads();
  // entry i: its expert's offset + the same expert's entries in earlier chunks + its rank within its chunk
  for (int c = warp; c < chunks; c += DEC_ROUTE_WARPS) {
    const int i = c * 32 + lane;
    const int ex = i < n ? selected[i] : -1;
    const unsigned m = __match_any_sync(FULL, ex);
    if (ex >= 0) {
      int before = 0;
      for (int c2 = 0; c2 < c; c2++) before += chunk_cnt[c2 * E + ex];
      entries[plan_pos[ex] + before + __popc(m & ((1u << lane) - 1))] = i;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// GEMM1 + SwiGLU (+ FP8 re-quantization)
// ---------------------------------------------------------------------------------------------------------------------
struct Gemm1Args {
  const uint8_t* act;        // GEMM1 activations [T, H] (FP8: e4m3 with act_scale [T, H / 128])
  const float* act_scale;
  const uint8_t *w1, *sw1;   // routed / shared W1, packed; FP8 block scales beside them
  const float *w1_scale, *sw1_scale;
  float *h32, *sh32;         // FP8: fp32 SwiGLU rows, re-quantized per 128 columns into h, sh (+ scales)
  uint8_t *h, *sh;
  float *h_scale, *sh_scale;
  int* block_counter;        // FP8: per (slot, 128-column block)
};

struct Gemm2Args {
  const uint8_t *h, *sh;     // SwiGLU rows (per routing entry; shared: per token), FP8 with scales
  const float *h_scale, *sh_scale;
  const uint8_t *w2, *sw2;
  const float *w2_scale, *sw2_scale;
  float *y, *y_shared;       // weighted expert rows (by routing entry; shared: by token), summed by moe_combine
  const float *topk_weight, *shared_row_weight;
};

template <bool FP8>
struct Gemm1Geometry {
  static constexpr bool kBulk = !FP8;
  const SmemPlan* p;
  const uint8_t *w1, *sw1;
  uint32_t tiles_r, H, I, SI;
  __device__ __forceinline__ Geometry operator()(uint32_t unit) const {
    constexpr uint32_t ESZ = FP8 ? 1 : 2;
    const bool shared = unit >= (uint32_t)p->U * tiles_r;
    const uint32_t tile = shared ? unit - (uint32_t)p->U * tiles_r : unit % tiles_r;
    const uint32_t rows = 2u * (shared ? SI : I);
    const int expert = shared ? 0 : p->expert[unit / tiles_r];
    return Geometry{(shared ? sw1 : w1) + (size_t)expert * rows * H * ESZ, rows, tile * 16, H * ESZ / 128};
  }
};

// One GEMM1 unit (GEMM1 unit index `unit` of the layer: 16 packed rows = 8 output columns of one used expert or the
// shared expert) of the warp, its weights taken from `ws`.
template <bool FP8, int NT, class S>
__device__ __forceinline__ void gemm1_unit(S& ws, uint32_t& consumed, const SmemPlan& p, const Gemm1Args& a,
                                           uint32_t unit, int T, int H, int I, int SI, int k) {
  const uint32_t lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  const int U = p.U;
  const uint32_t tiles_r = 2u * I / 16;
  const bool shared = unit >= (uint32_t)U * tiles_r;
  const int slot = shared ? U : unit / tiles_r;
  const uint32_t tile = shared ? unit - (uint32_t)U * tiles_r : unit % tiles_r;
  const UnitExpert ue = unit_expert(p, slot, T);
  const int N = shared ? SI : I;
  UnitOperands<FP8, NT> op;
  op.K = H;
  op.act = a.act;
  op.act_scale = a.act_scale;
  const int j = tile * 8 + g;  // output column of this thread's rows (gate row j, up row j)
  if (FP8) {
    const float* wsc = (shared ? a.sw1_scale : a.w1_scale) + (size_t)ue.expert * (2 * N / 128) * (H / 128);
    op.w_scale_lo = wsc + (size_t)((tile * 8) / 128) * (H / 128);
    op.w_scale_hi = wsc + (size_t)((N + tile * 8) / 128) * (H / 128);
  }
  int drow[NT][2];
#pragma unroll
  for (int nt = 0; nt < NT; nt++) {
    const int bi = nt * 8 + g;
    op.brow[nt] = bi < ue.cnt ? (shared ? bi : ue.entry(bi) / k) : -1;
#pragma unroll
    for (int c = 0; c < 2; c++) {
      const int di = nt * 8 + 2 * q + c;
      const int en = di < ue.cnt ? ue.entry(di) : -1;
      drow[nt][c] = en;                                       // output row: the entry (shared: the token)
      op.srow[nt][c] = en < 0 ? -1 : (shared ? en : en / k);  // activation row: the token
    }
  }
  op.ntiles = (ue.cnt + 7) / 8;
  float acc[NT][4];
  unit_mma<FP8, NT>(ws, (uint32_t)H * (FP8 ? 1 : 2) / 128, op, acc, consumed);
#pragma unroll
  for (int nt = 0; nt < NT; nt++) {
#pragma unroll
    for (int c = 0; c < 2; c++) {
      if (nt < op.ntiles && drow[nt][c] >= 0) {
        const float v = moe_swiglu(acc[nt][c], acc[nt][2 + c]);
        if (FP8) (shared ? a.sh32 : a.h32)[(size_t)drow[nt][c] * N + j] = v;
        else ((__nv_bfloat16*)(shared ? a.sh : a.h))[(size_t)drow[nt][c] * N + j] = __float2bfloat16_rn(v);
      }
    }
  }
}

// FP8: the 128-column block of GEMM1 unit `unit`'s expert, complete (its 16 units arrived), quantized per row - the
// recipe (amax over the block, one division); rows loaded 4 at a time, all in flight.
__device__ __forceinline__ void requant_block(const SmemPlan& p, const Gemm1Args& a, uint32_t unit, int T, int I, int SI) {
  const uint32_t lane = threadIdx.x & 31;
  const uint32_t tiles_r = 2u * I / 16;
  const bool shared = unit >= (uint32_t)p.U * tiles_r;
  const int slot = shared ? p.U : unit / tiles_r;
  const uint32_t tile = shared ? unit - (uint32_t)p.U * tiles_r : unit % tiles_r;
  const UnitExpert ue = unit_expert(p, slot, T);
  const int N = shared ? SI : I;
  const int cb = (tile * 8) / 128;
  const float* src = shared ? a.sh32 : a.h32;
  uint8_t* dst = shared ? a.sh : a.h;
  float* dsc = shared ? a.sh_scale : a.h_scale;
  for (int i0 = 0; i0 < ue.cnt; i0 += 4) {
    int r[4];
    float4 v[4];
#pragma unroll
    for (int u = 0; u < 4; u++) {
      r[u] = i0 + u < ue.cnt ? ue.entry(i0 + u) : -1;
      v[u] = r[u] >= 0 ? __ldcg((const float4*)(src + (size_t)r[u] * N + cb * 128) + lane) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int u = 0; u < 4; u++) {
      if (r[u] < 0) continue;  // warp-uniform
      const float amax = moe_warp_max(fmaxf(fmaxf(fabsf(v[u].x), fabsf(v[u].y)), fmaxf(fabsf(v[u].z), fabsf(v[u].w))));
      const float mult = moe_fp8_multiplier(amax);
      const unsigned qv = (unsigned)moe_to_e4m3(v[u].x * mult) | ((unsigned)moe_to_e4m3(v[u].y * mult) << 8)
                        | ((unsigned)moe_to_e4m3(v[u].z * mult) << 16) | ((unsigned)moe_to_e4m3(v[u].w * mult) << 24);
      *(unsigned*)(dst + (size_t)r[u] * N + cb * 128 + lane * 4) = qv;
      if (lane == 0) dsc[(size_t)r[u] * (N / 128) + cb] = moe_fp8_scale(amax);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// GEMM2 x routing weight + combine
// ---------------------------------------------------------------------------------------------------------------------
template <bool FP8>
struct Gemm2Geometry {
  static constexpr bool kBulk = !FP8;
  const SmemPlan* p;
  const uint8_t *w2, *sw2;
  uint32_t tiles, H, I, SI;
  __device__ __forceinline__ Geometry operator()(uint32_t unit) const {
    constexpr uint32_t ESZ = FP8 ? 1 : 2;
    const int slot = unit / tiles;
    const bool shared = slot >= p->U;
    const uint32_t K = shared ? SI : I;
    const int expert = shared ? 0 : p->expert[slot];
    return Geometry{(shared ? sw2 : w2) + (size_t)expert * H * K * ESZ, H, (unit % tiles) * 16, K * ESZ / 128};
  }
};

// One GEMM2 unit (16 output channels of one used expert or the shared expert) of the warp.
template <bool FP8, int NT, class S>
__device__ __forceinline__ void gemm2_unit(S& ws, uint32_t& consumed, const SmemPlan& p, const Gemm2Args& a,
                                           uint32_t unit, int T, int H, int I, int SI, int k) {
  const uint32_t lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  const uint32_t tiles = H / 16;
  const int slot = unit / tiles;
  const uint32_t tile = unit % tiles;
  const UnitExpert ue = unit_expert(p, slot, T);
  const int K = ue.shared ? SI : I;
  UnitOperands<FP8, NT> op;
  op.K = K;
  op.act = ue.shared ? a.sh : a.h;
  op.act_scale = ue.shared ? a.sh_scale : a.h_scale;
  if (FP8) {
    const float* wsc = (ue.shared ? a.sw2_scale : a.w2_scale) + ((size_t)ue.expert * (H / 128) + (tile * 16) / 128) * (K / 128);
    op.w_scale_lo = wsc;
    op.w_scale_hi = wsc;
  }
  int drow[NT][2];
#pragma unroll
  for (int nt = 0; nt < NT; nt++) {
    const int bi = nt * 8 + g;
    op.brow[nt] = bi < ue.cnt ? ue.entry(bi) : -1;
#pragma unroll
    for (int c = 0; c < 2; c++) {
      const int di = nt * 8 + 2 * q + c;
      drow[nt][c] = di < ue.cnt ? ue.entry(di) : -1;
      op.srow[nt][c] = drow[nt][c];
    }
  }
  op.ntiles = (ue.cnt + 7) / 8;
  float rw[NT][2];  // the rows' routing weights, loaded before the MMAs so that the epilogue does not wait for them
#pragma unroll
  for (int nt = 0; nt < NT; nt++)
#pragma unroll
    for (int c = 0; c < 2; c++) {
      const int r = drow[nt][c];
      rw[nt][c] = r < 0 ? 0.0f : (ue.shared ? a.shared_row_weight[r] : a.topk_weight[r]);
    }
  float acc[NT][4];
  unit_mma<FP8, NT>(ws, (uint32_t)K * (FP8 ? 1 : 2) / 128, op, acc, consumed);
  const int n0 = tile * 16 + g;
#pragma unroll
  for (int nt = 0; nt < NT; nt++) {
#pragma unroll
    for (int c = 0; c < 2; c++) {
      const int r = drow[nt][c];
      if (nt < op.ntiles && r >= 0) {
        float* dst = (ue.shared ? a.y_shared : a.y) + (size_t)r * H;
        dst[n0] = acc[nt][c] * rw[nt][c];
        dst[n0 + 8] = acc[nt][2 + c] * rw[nt][c];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// The launches, GEMM1 or GEMM2: warp w of the grid owns units w, w + W, ... (session 10 measured both GEMMs in one
// launch, GEMM2's units waiting per expert for GEMM1's: bitwise the same, no faster - docs/kernel-notes.md)
// ---------------------------------------------------------------------------------------------------------------------
template <bool FP8, int NT, class Args>
__device__ __forceinline__ void gemm_launch(const Args& a, Plan gp, int max_used, const int* __restrict__ num_tokens, int H, int I,
                                            int SI, int k) {
  constexpr bool kGemm1 = std::is_same_v<Args, Gemm1Args>;
  extern __shared__ __align__(16) uint8_t dec_gemm_smem[];
  const int T = min(*num_tokens, 8 * NT);
  const SmemPlan p = load_plan(gp, (int*)(dec_gemm_smem + DEC_WARPS * DEC_STAGES * 2048 + DEC_BARRIER_BYTES), max_used, T * k);
  const uint32_t U = (uint32_t)p.U;
  const uint32_t warp = threadIdx.x >> 5;
  const uint32_t first = blockIdx.x * DEC_WARPS + warp, stride = gridDim.x * DEC_WARPS;
  const uint32_t ring = (uint32_t)__cvta_generic_to_shared(dec_gemm_smem + warp * DEC_STAGES * 2048);
  const uint32_t bars = (uint32_t)__cvta_generic_to_shared(dec_gemm_smem + DEC_WARPS * DEC_STAGES * 2048 + warp * DEC_STAGES * 8);
  uint32_t consumed = 0;
  if constexpr (kGemm1) {
    const uint32_t tiles_r = 2u * I / 16, total = U * tiles_r + (a.sw1 != nullptr ? 2u * SI / 16 : 0u);
    WeightStream<Gemm1Geometry<FP8>> ws{Gemm1Geometry<FP8>{&p, a.w1, a.sw1, tiles_r, (uint32_t)H, (uint32_t)I, (uint32_t)SI}};
    ws.start(first, total, stride, ring, bars);
    const int blocks_max = max(I, SI) / 128;
    for (uint32_t unit = first; unit < total; unit += stride) {
      gemm1_unit<FP8, NT>(ws, consumed, p, a, unit, T, H, I, SI, k);
      if constexpr (FP8) {  // the re-quantization of the unit's 128-column block, by the warp completing it
        const bool shared = unit >= U * tiles_r;
        const uint32_t slot = shared ? U : unit / tiles_r, tile = shared ? unit - U * tiles_r : unit % tiles_r;
        if (arrive_last(&a.block_counter[slot * blocks_max + (tile * 8) / 128], 16)) requant_block(p, a, unit, T, I, SI);
      }
    }
  } else {
    const uint32_t tiles = H / 16, total = (U + (a.sw2 != nullptr ? 1u : 0u)) * tiles;
    WeightStream<Gemm2Geometry<FP8>> ws{Gemm2Geometry<FP8>{&p, a.w2, a.sw2, tiles, (uint32_t)H, (uint32_t)I, (uint32_t)SI}};
    ws.start(first, total, stride, ring, bars);
    for (uint32_t unit = first; unit < total; unit += stride) gemm2_unit<FP8, NT>(ws, consumed, p, a, unit, T, H, I, SI, k);
  }
  cp_async_wait<0>();
}

}  // namespace moe_dec

#define DEC_ROUTE(NAME, TCAP)                                                                                          \
  extern "C" __global__ void __launch_bounds__(DEC_ROUTE_THREADS, 1) NAME(                                                 \
      const float* x, const float* w, const float* bias, double* partial, float* logits, int* topk_expert,             \
      float* topk_weight, float* shared_row_weight, uint8_t* act, float* act_scale, int* group_counter,               \
      int* route_counter, int* expert_count, int* num_used, int* used_expert, int* used_off, int* used_cnt,           \
      int* entries, const int* num_tokens, int H, int n_out, int E, int k, int scoring, int n_group, int topk_group,   \
      int norm_topk, float scaling, int shared_gated, int fp8, int topk_warps) {                                      \
    moe_dec::route<TCAP>(x, w, bias, partial, logits, topk_expert, topk_weight, shared_row_weight, act, act_scale,    \
                         group_counter, route_counter, expert_count, num_used, used_expert, used_off, used_cnt,       \
                         entries, num_tokens, H, n_out, E, k, scoring, n_group, topk_group, norm_topk, scaling,       \
                         shared_gated, fp8, topk_warps);                                                               \
  }
DEC_ROUTE(moe_decode_route_t16, 16)
DEC_ROUTE(moe_decode_route_t32, 32)

// Kernel parameters of the GEMM launches, in this order (MoeDecode.java passes them so).
#define DEC_GEMM1_PARAMS                                                                                               \
  const uint8_t *act, const float *act_scale, const uint8_t *w1, const float *w1_scale, const uint8_t *sw1,            \
      const float *sw1_scale, float *h32, uint8_t *h, float *h_scale, float *sh32, uint8_t *sh, float *sh_scale,       \
      int *block_counter
#define DEC_GEMM2_PARAMS                                                                                               \
  const uint8_t *h2, const float *h2_scale, const uint8_t *w2, const float *w2_scale, const uint8_t *sh2,              \
      const float *sh2_scale, const uint8_t *sw2, const float *sw2_scale, float *y, float *y_shared,                  \
      const float *topk_weight, const float *shared_row_weight
#define DEC_PLAN_PARAMS                                                                                                \
  const int *num_used, const int *used_expert, const int *used_off, const int *used_cnt, const int *entries,          \
      int max_used, const int *num_tokens, int H, int I, int SI, int k
#define DEC_GEMM1_ARGS moe_dec::Gemm1Args{act, act_scale, w1, sw1, w1_scale, sw1_scale, h32, sh32, h, sh, h_scale, sh_scale, block_counter}
#define DEC_GEMM2_ARGS                                                                                                 \
  moe_dec::Gemm2Args{h2, sh2, h2_scale, sh2_scale, w2, sw2, w2_scale, sw2_scale, y, y_shared, topk_weight,            \
                     shared_row_weight}
#define DEC_PLAN moe_dec::Plan{num_used, used_expert, used_off, used_cnt, entries}

#define DEC_GEMM1(NAME, FP8, NT)                                                                                       \
  extern "C" __global__ void __launch_bounds__(DEC_THREADS, 2) NAME(DEC_GEMM1_PARAMS, DEC_PLAN_PARAMS) {               \
    moe_dec::gemm_launch<FP8, NT>(DEC_GEMM1_ARGS, DEC_PLAN, max_used, num_tokens, H, I, SI, k);                      \
  }
DEC_GEMM1(moe_decode_gemm1_fp8_t16, true, 2)
DEC_GEMM1(moe_decode_gemm1_fp8_t32, true, 4)
DEC_GEMM1(moe_decode_gemm1_bf16_t16, false, 2)
DEC_GEMM1(moe_decode_gemm1_bf16_t32, false, 4)

#define DEC_GEMM2(NAME, FP8, NT)                                                                                       \
  extern "C" __global__ void __launch_bounds__(DEC_THREADS, 2) NAME(DEC_GEMM2_PARAMS, DEC_PLAN_PARAMS) {               \
    moe_dec::gemm_launch<FP8, NT>(DEC_GEMM2_ARGS, DEC_PLAN, max_used, num_tokens, H, I, SI, k);                      \
  }
DEC_GEMM2(moe_decode_gemm2_fp8_t16, true, 2)
DEC_GEMM2(moe_decode_gemm2_fp8_t32, true, 4)
DEC_GEMM2(moe_decode_gemm2_bf16_t16, false, 2)
DEC_GEMM2(moe_decode_gemm2_bf16_t32, false, 4)
