package dev.sparkmoe.kernels;

import dev.sparkmoe.cuda.CudaFunction;
import dev.sparkmoe.cuda.CudaFunction.Dim;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.model.ScoringFunction;

import static dev.sparkmoe.kernels.MoeRoute.ceilDiv;
import static dev.sparkmoe.kernels.MoeRoute.nullable;

/**
 * Launcher of moe_decode.cu, the small-batch layer in three kernels: route (router logits in fp64, GEMM1's activations,
 * top-k and the per-expert plan, in one launch), GEMM1 + SwiGLU (+ FP8 re-quantization) and GEMM2 x routing weight
 * into Y rows by routing entry ({@link MoeCombine} then sums them), for launches of at most {@link #MAX_TOKENS} tokens.
 * The kernels are built for a token tile of 16 or 32 ({@link #tokenTile}); buffer sizes for a tile are the static
 * methods here.
 */
public final class MoeDecode {
    /** The most tokens one launch of the small-batch kernels takes. */
    public static final int MAX_TOKENS = 32;
    /** Router logits: K chunk and router rows of one CTA (DEC_KC, DEC_EG = ROUTE_WARPS: one row per warp). */
    static final int K_CHUNK = 256, ROWS_PER_CTA = 16;
    /** Warps of the route kernel's CTAs (ROUTE_WARPS) and of the GEMM kernels' CTAs (DEC_WARPS). */
    static final int ROUTE_WARPS = 16, WARPS = 8, THREADS = WARPS * 32;
    /** Shared memory the route kernel's top-k warps may take for their scratch: their count shrinks for very large E. */
    static final int TOPK_SCRATCH_MAX_BYTES = 160 * 1024;
    /** Weight slabs (2 KB per warp) in each warp's shared-memory ring (DEC_STAGES). */
    static final int STAGES = 5;
    /** Shared memory after the rings for their mbarriers (DEC_BARRIER_BYTES: BF16's bulk-copy ring). */
    static final int RING_BARRIER_BYTES = 1024;

    private final CudaFunction route16, route32, gemm1Fp8x16, gemm1Fp8x32, gemm1Bf16x16, gemm1Bf16x32, gemm2Fp8x16, gemm2Fp8x32,
            gemm2Bf16x16, gemm2Bf16x32;
    private final int smCount;

    public MoeDecode(CudaModule module, int smCount) {
        this.smCount = smCount;
        route16 = module.function("moe_decode_route_t16");
        route32 = module.function("moe_decode_route_t32");
        gemm1Fp8x16 = module.function("moe_decode_gemm1_fp8_t16");
        gemm1Fp8x32 = module.function("moe_decode_gemm1_fp8_t32");
        gemm1Bf16x16 = module.function("moe_decode_gemm1_bf16_t16");
        gemm1Bf16x32 = module.function("moe_decode_gemm1_bf16_t32");
        gemm2Fp8x16 = module.function("moe_decode_gemm2_fp8_t16");
        gemm2Fp8x32 = module.function("moe_decode_gemm2_fp8_t32");
        gemm2Bf16x16 = module.function("moe_decode_gemm2_bf16_t16");
        gemm2Bf16x32 = module.function("moe_decode_gemm2_bf16_t32");
    }

    /** The kernels' token tile for launches of up to {@code maxTokens} tokens: 16 or 32. */
    public static int tokenTile(int maxTokens) {
        if (maxTokens < 1 || maxTokens > MAX_TOKENS) {
            throw new IllegalArgumentException("the small-batch kernels take 1.." + MAX_TOKENS + " tokens per launch, asked for " + maxTokens);
        }
        return maxTokens <= 16 ? 16 : 32;
    }

    /** K chunks of the router logits (grid x of the route kernel). */
    public static int logitChunks(int hidden) { return ceilDiv(hidden, K_CHUNK); }

    /** Router row groups (grid y of the route kernel). */
    public static int logitGroups(int routerRows) { return ceilDiv(routerRows, ROWS_PER_CTA); }

    /** Doubles of the route kernel's partial sums for token tile {@code tile}. */
    public static long partialDoubles(int tile, int hidden, int routerRows) { return (long) logitChunks(hidden) * tile * routerRows; }

    /** Most experts one launch can use (plan arrays): every entry on its own expert, at most E. */
    public static int maxUsedExperts(int tile, MoeConfig c) { return Math.min(c.numExperts(), tile * c.topK()); }

    /** Ints of GEMM1's per-(expert slot, 128-column block) counters: used experts + the shared expert. */
    public static long gemm1Counters(int tile, MoeConfig c) {
        int blocks = Math.max(c.expertIntermediateSize(), c.hasSharedExpert() ? c.sharedIntermediateSize() : 0) / 128;
        return (long) (maxUsedExperts(tile, c) + 1) * blocks;
    }

    /** Top-k scratch of one warp of the route kernel (key, score [E], logits row [routerRows] floats, eligibility [E] bytes). */
    private static int topkScratchBytes(int experts, int routerRows) {
        return 4 * (2 * experts + routerRows + (experts + 3) / 4);
    }

    /** Warps of the route kernel's last CTA that run top-k (one token each at a time): all, unless the scratch would not fit. */
    static int topkWarps(int experts, int routerRows) {
        return Math.max(1, Math.min(ROUTE_WARPS, TOPK_SCRATCH_MAX_BYTES / topkScratchBytes(experts, routerRows)));
    }

    /** Dynamic shared memory of the route kernel: the x chunk in fp64, or the top-k warps' scratch, whichever is larger. */
    static int routeSmemBytes(int tile, int experts, int routerRows) {
        return Math.max(tile * K_CHUNK * Double.BYTES, topkWarps(experts, routerRows) * topkScratchBytes(experts, routerRows));
    }

    /** Persistent grid of the GEMM kernels: two CTAs of 8 warps per SM (their register and shared-memory budget). */
    private Dim gemmGrid() { return Dim.of(2 * smCount); }

    /** Dynamic shared memory of the GEMM kernels: the warps' weight rings, their mbarriers, then the plan (3 x maxUsed + tile x k ints). */
    static int gemmSmemBytes(int tile, MoeConfig c) {
        return WARPS * STAGES * 2048 + RING_BARRIER_BYTES + 4 * (3 * maxUsedExperts(tile, c) + tile * c.topK());
    }

    /** The buffers of the small-batch plan (written by {@link #route}, read by the GEMMs). */
    public record Plan(DeviceBuffer numUsed, DeviceBuffer usedExpert, DeviceBuffer usedOffset, DeviceBuffer usedCount,
                       DeviceBuffer entries) {}

    /**
     * Router logits of {@code x} [tokens, H] (fp32 router [routerRows, H], sums in fp64), GEMM1's activations into
     * {@code act}/{@code actScale} (FP8: e4m3 + scales per 128; BF16: bf16, actScale unused), top-k into
     * {@code topkExpert}/{@code topkWeight} [tokens, k] (and Qwen2-MoE's gates into {@code sharedGate}, nullable), the
     * per-expert token counts into {@code expertCount} [E] and the plan. Counters must be zero (they are left zero).
     */
    public void route(CudaStream s, int tile, MoeConfig c, int routerRows, boolean fp8, DeviceBuffer x, DeviceBuffer router,
                      DeviceBuffer bias, DeviceBuffer partial, DeviceBuffer logits, DeviceBuffer topkExpert, DeviceBuffer topkWeight,
                      DeviceBuffer sharedGate, DeviceBuffer act, DeviceBuffer actScale, DeviceBuffer groupCounters,
                      DeviceBuffer routeCounter, DeviceBuffer expertCount, Plan plan, DeviceBuffer numTokens) {
        int h = c.hiddenSize();
        CudaFunction f = tile == 16 ? route16 : route32;
        f.launch(s, Dim.of(logitChunks(h), logitGroups(routerRows)), Dim.of(ROUTE_WARPS * 32), routeSmemBytes(tile, c.numExperts(), routerRows),
                x, router, nullable(bias), partial, logits, topkExpert, topkWeight, nullable(sharedGate), act, nullable(actScale),
                groupCounters, routeCounter, expertCount, plan.numUsed(), plan.usedExpert(), plan.usedOffset(), plan.usedCount(),
                plan.entries(), numTokens, h, routerRows, c.numExperts(), c.topK(), c.scoring() == ScoringFunction.SIGMOID ? 1 : 0,
                c.nGroup(), c.topkGroup(), c.normTopkProb() ? 1 : 0, c.routedScalingFactor(), c.sharedExpertGated() ? 1 : 0,
                fp8 ? 1 : 0, topkWarps(c.numExperts(), routerRows));
    }

    /**
     * GEMM1 + SwiGLU of the used experts (and the shared expert when {@code sharedW1} is not null) into {@code h}
     * [tokens*k, I] (rows = routing entries) and {@code sharedH} [tokens, SI]; FP8 also writes the fp32 SwiGLU rows
     * ({@code h32}, {@code sharedH32}) and re-quantizes them with scales into {@code hScale}, {@code sharedHScale}.
     */
    public void gemm1(CudaStream s, int tile, MoeConfig c, boolean fp8, DeviceBuffer act, DeviceBuffer actScale, DeviceBuffer w1,
                      DeviceBuffer w1Scale, DeviceBuffer sharedW1, DeviceBuffer sharedW1Scale, DeviceBuffer h32, DeviceBuffer h,
                      DeviceBuffer hScale, DeviceBuffer sharedH32, DeviceBuffer sharedH, DeviceBuffer sharedHScale,
                      DeviceBuffer blockCounters, Plan plan, DeviceBuffer numTokens) {
        CudaFunction f = fp8 ? (tile == 16 ? gemm1Fp8x16 : gemm1Fp8x32) : (tile == 16 ? gemm1Bf16x16 : gemm1Bf16x32);
        f.launch(s, gemmGrid(), Dim.of(THREADS), gemmSmemBytes(tile, c), act, nullable(actScale), w1, nullable(w1Scale), nullable(sharedW1),
                nullable(sharedW1Scale), nullable(h32), h, nullable(hScale), nullable(sharedH32), nullable(sharedH),
                nullable(sharedHScale), blockCounters, plan.numUsed(), plan.usedExpert(), plan.usedOffset(), plan.usedCount(),
                plan.entries(), maxUsedExperts(tile, c), numTokens, c.hiddenSize(), c.expertIntermediateSize(),
                c.hasSharedExpert() ? c.sharedIntermediateSize() : 0, c.topK());
    }

    /**
     * GEMM2 of the used experts (and the shared expert) times the routing weight ({@code sharedRowWeight}: 1 or the
     * gate) into {@code y} [tokens*k, H] (rows by routing entry) and {@code sharedY} [tokens, H]; {@link MoeCombine}
     * without a slot map then sums each token's rows plus its shared row.
     */
    public void gemm2(CudaStream s, int tile, MoeConfig c, boolean fp8, DeviceBuffer h, DeviceBuffer hScale, DeviceBuffer w2,
                      DeviceBuffer w2Scale, DeviceBuffer sharedH, DeviceBuffer sharedHScale, DeviceBuffer sharedW2,
                      DeviceBuffer sharedW2Scale, DeviceBuffer y, DeviceBuffer sharedY, DeviceBuffer topkWeight,
                      DeviceBuffer sharedRowWeight, Plan plan, DeviceBuffer numTokens) {
        CudaFunction f = fp8 ? (tile == 16 ? gemm2Fp8x16 : gemm2Fp8x32) : (tile == 16 ? gemm2Bf16x16 : gemm2Bf16x32);
        f.launch(s, gemmGrid(), Dim.of(THREADS), gemmSmemBytes(tile, c), h, nullable(hScale), w2, nullable(w2Scale), nullable(sharedH),
                nullable(sharedHScale), nullable(sharedW2), nullable(sharedW2Scale), y, nullable(sharedY), topkWeight,
                nullable(sharedRowWeight), plan.numUsed(), plan.usedExpert(), plan.usedOffset(), plan.usedCount(),
                plan.entries(), maxUsedExperts(tile, c), numTokens, c.hiddenSize(), c.expertIntermediateSize(),
                c.hasSharedExpert() ? c.sharedIntermediateSize() : 0, c.topK());
    }
}
