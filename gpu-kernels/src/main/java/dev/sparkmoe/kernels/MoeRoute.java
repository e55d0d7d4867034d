package dev.sparkmoe.kernels;

import dev.sparkmoe.cuda.CudaFunction;
import dev.sparkmoe.cuda.CudaFunction.Dim;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.model.ScoringFunction;

/** Launcher of moe_route.cu: router logits (fp64 accumulation) and top-k selection for every routing function. */
public final class MoeRoute {
    /** Router logit tile (tokens and outputs) of moe_router_logits. */
    static final int LOGIT_TILE = 64;
    /** Tokens (warps) per block of moe_route_topk. */
    static final int ROUTE_WARPS = 4;
    /** Dynamic shared memory of moe_router_logits_tc: 3 stages x (x and w tiles of 64 rows x 36 floats). */
    static final int TC_SMEM_BYTES = 3 * 2 * 64 * 36 * 4;
    /** The most experts moe_route_topk keeps per warp in shared memory (MOE_MAX_EXPERTS). */
    public static final int MAX_EXPERTS = 1024;
    /** The most choices per token and the most expert groups (one warp). */
    public static final int MAX_TOP_K = 32;

    private final CudaFunction logits;
    private final CudaFunction reduce;
    private final boolean tensorCores;
    private final CudaFunction topk;
    private final int smCount;

    /** @param tensorCores router logits on the fp64 tensor cores (DMMA), else the fp64 FMA (SIMT) kernel */
    public MoeRoute(CudaModule module, int smCount, boolean tensorCores) {
        this.smCount = smCount;
        this.reduce = module.function("moe_router_logits_reduce");
        this.tensorCores = tensorCores;
        this.logits = module.function(tensorCores ? "moe_router_logits_tc" : "moe_router_logits");
        this.topk = module.function("moe_route_topk");
    }

    /**
     * K splits of the tensor-core logits kernel for a launch sized for {@code tokenCapacity}: enough CTAs to cover the
     * GPU about twice when the token tiles alone do not (few tokens), each split at least 256 of K.
     */
    public static int splits(int tokenCapacity, int nOut, int hidden, int smCount) {
        int tiles = ceilDiv(nOut, LOGIT_TILE) * ceilDiv(tokenCapacity, LOGIT_TILE);
        int s = Math.max(1, Math.min(2 * smCount / tiles, hidden / 256));
        return ceilDiv(hidden, kPerSplit(hidden, s));
    }

    private static int kPerSplit(int hidden, int splits) { return ceilDiv(ceilDiv(hidden, splits), 32) * 32; }

    /** Doubles of the split-K partial sums buffer that serves every launch on a device of {@code smCount} SMs. */
    public static long partialDoubles(int smCount) { return 2L * smCount * LOGIT_TILE * LOGIT_TILE; }

    /**
     * logits [tokens, nOut] = x [tokens, H] . w [nOut, H]^T, for the device token count (grid sized for tokenCapacity);
     * {@code partial} holds {@link #partialDoubles} doubles (split-K partial sums).
     */
    public void logits(CudaStream s, DeviceBuffer x, DeviceBuffer w, DeviceBuffer out, DeviceBuffer partial, DeviceBuffer numTokens,
                       int tokenCapacity, int hidden, int nOut) {
        Dim grid2 = Dim.of(ceilDiv(nOut, LOGIT_TILE), ceilDiv(tokenCapacity, LOGIT_TILE));
        if (!tensorCores) {
            logits.launch(s, grid2, Dim.of(256), 0, x, w, out, numTokens, hidden, nOut);
            return;
        }
        int splits = splits(tokenCapacity, nOut, hidden, smCount);
        int kps = kPerSplit(hidden, splits);
        logits.launch(s, new Dim(grid2.x(), grid2.y(), splits), Dim.of(128), TC_SMEM_BYTES, x, w, out, partial, numTokens, hidden, nOut, kps);
        if (splits > 1) {
            reduce.launch(s, Dim.of(Math.max(1, ceilDiv((long) tokenCapacity * nOut, 256))), Dim.of(256), 0, partial, out, numTokens, nOut, splits);
        }
    }

    /**
     * Top-k per token into topkExpert/topkWeight [tokens, k]; sharedRowWeight (nullable) gets 1 or the Qwen2-MoE gate;
     * sharedNumBlocks (nullable) gets ceil(tokens / 128).
     */
    public void topk(CudaStream s, MoeConfig c, DeviceBuffer logitsBuf, DeviceBuffer bias, DeviceBuffer topkExpert,
                     DeviceBuffer topkWeight, DeviceBuffer sharedRowWeight, DeviceBuffer sharedNumBlocks,
                     DeviceBuffer numTokens, int tokenCapacity, int nOut) {
        int smem = ROUTE_WARPS * c.numExperts() * 9; // keys and scores (fp32) and eligibility (byte) per warp
        topk.launch(s, Dim.of(ceilDiv(tokenCapacity, ROUTE_WARPS)), Dim.of(ROUTE_WARPS * 32), smem,
                logitsBuf, nullable(bias), topkExpert, topkWeight, nullable(sharedRowWeight), nullable(sharedNumBlocks), numTokens,
                c.numExperts(), nOut, c.topK(), c.scoring() == ScoringFunction.SIGMOID ? 1 : 0, c.nGroup(), c.topkGroup(),
                c.normTopkProb() ? 1 : 0, c.routedScalingFactor(), c.sharedExpertGated() ? 1 : 0);
    }

    static Object nullable(DeviceBuffer b) { return b == null ? (Object) 0L : b; }

    static int ceilDiv(long a, long b) { return Math.toIntExact((a + b - 1) / b); }
}
