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
    /** The most experts moe_route_topk keeps per warp in shared memory (MOE_MAX_EXPERTS). */
    public static final int MAX_EXPERTS = 1024;
    /** The most choices per token and the most expert groups (one warp). */
    public static final int MAX_TOP_K = 32;

    private final CudaFunction logits;
    private final CudaFunction topk;

    public MoeRoute(CudaModule module) {
        this.logits = module.function("moe_router_logits");
        this.topk = module.function("moe_route_topk");
    }

    /** logits [tokens, nOut] = x [tokens, H] . w [nOut, H]^T, for the device token count (grid sized for tokenCapacity). */
    public void logits(CudaStream s, DeviceBuffer x, DeviceBuffer w, DeviceBuffer out, DeviceBuffer numTokens,
                       int tokenCapacity, int hidden, int nOut) {
        logits.launch(s, Dim.of(ceilDiv(nOut, LOGIT_TILE), ceilDiv(tokenCapacity, LOGIT_TILE)), Dim.of(256), 0,
                x, w, out, numTokens, hidden, nOut);
    }

    /**
     * Top-k per token into topkExpert/topkWeight [tokens, k]; sharedRowWeight (null without a shared expert) gets 1 or
     * the Qwen2-MoE gate; sharedNumBlocks gets ceil(tokens / 128).
     */
    public void topk(CudaStream s, MoeConfig c, DeviceBuffer logitsBuf, DeviceBuffer bias, DeviceBuffer topkExpert,
                     DeviceBuffer topkWeight, DeviceBuffer sharedRowWeight, DeviceBuffer sharedNumBlocks,
                     DeviceBuffer numTokens, int tokenCapacity, int nOut) {
        topk.launch(s, Dim.of(ceilDiv(tokenCapacity, ROUTE_WARPS)), Dim.of(ROUTE_WARPS * 32), 0,
                logitsBuf, nullable(bias), topkExpert, topkWeight, nullable(sharedRowWeight), sharedNumBlocks, numTokens,
                c.numExperts(), nOut, c.topK(), c.scoring() == ScoringFunction.SIGMOID ? 1 : 0, c.nGroup(), c.topkGroup(),
                c.normTopkProb() ? 1 : 0, c.routedScalingFactor(), c.sharedExpertGated() ? 1 : 0);
    }

    static Object nullable(DeviceBuffer b) { return b == null ? (Object) 0L : b; }

    static int ceilDiv(long a, long b) { return Math.toIntExact((a + b - 1) / b); }
}
