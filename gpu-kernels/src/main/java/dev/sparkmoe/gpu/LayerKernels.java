package dev.sparkmoe.gpu;

import dev.sparkmoe.cuda.CudaContext;
import dev.sparkmoe.cuda.CudaEvent;
import dev.sparkmoe.cuda.CudaException;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.kernels.GroupedGemm;
import dev.sparkmoe.kernels.GroupedGemm.RealRows;
import dev.sparkmoe.kernels.GroupedGemmConfig;
import dev.sparkmoe.kernels.MoeCombine;
import dev.sparkmoe.kernels.MoeDecode;
import dev.sparkmoe.kernels.MoeDispatch;
import dev.sparkmoe.kernels.MoeRoute;
import dev.sparkmoe.kernels.WeightPacking.Format;
import dev.sparkmoe.kernels.WorkCounters;
import dev.sparkmoe.model.MoeConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * The kernel sequence of one layer on its stream, sized for a bucket and reading the real token count on the device
 * (no host synchronization): route -> dispatch (padded expert-contiguous layout, FP8 quantization) -> grouped GEMM1
 * with SwiGLU -> grouped GEMM2 with the routing weight -> shared expert -> combine, or the small-batch path
 * ({@link MoeDecode}). Owns what only this sequence uses: the shared expert's branch (its stream and events), the
 * small-batch workspace and the fp64 router copy; the weights, the layer's stream and the {@link LayerWorkspace} are
 * the engine's. Whether the sequence is replayed as a graph is {@link LayerGraphs}' business.
 */
final class LayerKernels implements AutoCloseable {
    /** Called between the stages of a layer (profiling records an event there; the normal path does nothing). */
    interface StageMark {
        StageMark NONE = stage -> { };

        void after(String stage);
    }

    private final MoeConfig config;
    private final Format format;
    private final CudaStream stream;
    private final DeviceWeights weights;
    private final MoeRoute route;
    /** What the router kernel reads: the weights' fp32 router, or ({@link MoeRoute.Kernel#wantsF64Weights}) an fp64 copy owned here. */
    private final DeviceBuffer routerWeights;
    /** The certified router's bf16 router copy and row norms (owned here); null for the other router kernels. */
    private final DeviceBuffer routerBf16, routerNorms;
    private final MoeDispatch dispatch;
    private final MoeCombine combine;
    private final GroupedGemm gemm;
    /** The dynamic-unit GEMMs' counter pairs, one per stream ({@link GpuEngineSettings#GEMM_DYNAMIC_UNITS}); else null. */
    private final WorkCounters workCounters;
    /** FP8: the routed GEMM1 gathers its rows from the once-quantized tokens ({@link GpuEngineSettings#GATHER_ROWS}). */
    private final boolean gatherRows;
    /**
     * The shared expert's branch ({@link GpuEngineSettings#SHARED_EXPERT_STREAM}; null without a shared expert or with
     * the setting off): its stream, forked from {@link #stream} by {@code sharedFork} and joined before combine by
     * {@code sharedJoin}; {@code gateReady} (Qwen2-MoE only) orders its GEMM2 after the route kernel wrote the gates.
     */
    private final CudaStream sharedStream;
    private final CudaEvent sharedFork, sharedJoin, gateReady;
    /** BF16 GEMMs get the experts' real row counts ({@link GpuEngineSettings#BF16_SKIP_PADDING_HALVES}). */
    private final boolean bf16SkipPadding;
    /** BF16 GEMM1 gets them ({@link GpuEngineSettings#BF16_GEMM1_SKIP_PADDING_HALVES}, or the above). */
    private final boolean bf16Gemm1SkipPadding;
    /**
     * The small-batch path ({@link GpuEngineSettings#DECODE_MAX_TOKENS}): calls of at most {@code decodeMaxTokens}
     * tokens run {@link MoeDecode}'s three kernels and the combine on {@code decodeWs}; both null (and the limit 0) when off.
     */
    private final int decodeMaxTokens;
    private final MoeDecode decode;
    private final DecodeWorkspace decodeWs;
    /** What this made, in creation order (closed in reverse when construction fails). */
    private final List<AutoCloseable> made = new ArrayList<>();
    private boolean closed;

    /**
     * Loads the launchers of layer {@code layer} from {@code module} and makes what the sequence owns; {@code weights}
     * (uploaded on {@code stream}) and {@code stream} stay the caller's. On failure everything made here is closed again.
     */
    LayerKernels(CudaContext cx, CudaModule module, CudaStream stream, MoeConfig c, int layer, Format format, ResolvedEngineSettings s,
                 DeviceWeights weights) {
        this.config = c;
        this.format = format;
        this.stream = stream;
        this.weights = weights;
        try {
            boolean branch = s.sharedBranch();
            this.sharedStream = branch ? Closeables.add(made, new CudaStream(cx, CudaStream.Priority.LOWEST)) : null;
            this.sharedFork = branch ? Closeables.add(made, CudaEvent.forOrdering(cx, "layer " + layer + " shared expert fork")) : null;
            this.sharedJoin = branch ? Closeables.add(made, CudaEvent.forOrdering(cx, "layer " + layer + " shared expert join")) : null;
            this.gateReady = branch && c.sharedExpertGated()
                    ? Closeables.add(made, CudaEvent.forOrdering(cx, "layer " + layer + " shared expert gates")) : null;
            this.bf16SkipPadding = s.bf16SkipPadding();
            this.bf16Gemm1SkipPadding = s.bf16Gemm1SkipPadding();
            MoeRoute.Kernel router = s.routerKernel();
            DeviceBuffer bf16 = null, norms = null;
            if (router.certified() || router == MoeRoute.Kernel.AUTO) {
                bf16 = Closeables.add(made, new DeviceBuffer(cx, "router (bf16)", weights.router.count(), 2));
                norms = Closeables.add(made, DeviceBuffer.floats(cx, "router row norms", weights.routerRows));
                long inexact = prepareCertified(cx, module, stream, weights, bf16, norms, c.hiddenSize());
                if (inexact > 0 && router.certified()) {
                    throw new MoeEngineException(GpuEngineSettings.ROUTER_KERNEL.key() + "=" + router.name().toLowerCase(java.util.Locale.ROOT)
                            + " needs router weights that bf16 holds exactly (as checkpoints store them); layer " + layer + "'s router has "
                            + inexact + " values that it does not: use auto or tc2w");
                }
                router = router.resolve(inexact == 0, c.hiddenSize());
                if (!router.certified()) { // auto on a router bf16 does not hold: tc2w, without these
                    made.remove(bf16);
                    made.remove(norms);
                    Closeables.closeAll(List.of(bf16, norms));
                }
            }
            if (router == MoeRoute.Kernel.CERTWG && c.hiddenSize() % MoeRoute.CERTWG_K_STAGE != 0) {
                throw new MoeEngineException(GpuEngineSettings.ROUTER_KERNEL.key() + "=certwg needs a hidden size that is a multiple of "
                        + MoeRoute.CERTWG_K_STAGE + ", layer " + layer + " has " + c.hiddenSize() + ": use cert");
            }
            this.routerBf16 = router.certified() ? bf16 : null;
            this.routerNorms = router.certified() ? norms : null;
            this.route = new MoeRoute(module, cx.multiprocessorCount(), router);
            if (router.wantsF64Weights()) {
                this.routerWeights = Closeables.add(made, DeviceBuffer.doubles(cx, "router (fp64)", weights.router.count()));
                route.widenWeights(stream, weights.router, routerWeights);
            } else {
                this.routerWeights = weights.router;
            }
            this.dispatch = new MoeDispatch(module, s.scatterKernel());
            int small = s.decodeMaxTokens();
            this.decodeMaxTokens = small;
            this.decode = small > 0 ? new MoeDecode(module, cx.multiprocessorCount()) : null;
            this.decodeWs = small > 0 ? Closeables.add(made, new DecodeWorkspace(cx, stream, c, format, weights.routerRows, small)) : null;
            this.combine = new MoeCombine(module);
            this.gatherRows = s.gatherRows();
            boolean claiming = s.gemmDynamicUnits() != GroupedGemm.DynamicUnits.OFF;
            this.workCounters = claiming ? Closeables.add(made, new WorkCounters(cx, "layer " + layer, stream, sharedStream)) : null;
            this.gemm = new GroupedGemm(module, cx.multiprocessorCount(), s.referenceGemm(), s.fp8PromotionInterval(), s.yBf16(), workCounters,
                    s.gemmDynamicUnits());
            if (s.yBf16()) requireBf16YKernels(c, module, gemm);
        } catch (RuntimeException e) {
            Closeables.closeAfter(made, e);
            throw e;
        }
    }

    /**
     * bf16 Y: the GEMM2 kernels this layer launches (routed and shared expert) must have their {@code _ybf16} forms in the
     * fatbin - refused here, naming the missing entry point, rather than at the first launch.
     */
    private void requireBf16YKernels(MoeConfig c, CudaModule m, GroupedGemm g) {
        GroupedGemmConfig.Operand op = format == Format.FP8 ? GroupedGemmConfig.Operand.FP8 : GroupedGemmConfig.Operand.BF16;
        List<Integer> ks = new ArrayList<>(List.of(c.expertIntermediateSize()));
        if (c.hasSharedExpert()) ks.add(c.sharedIntermediateSize());
        for (int k : ks) {
            for (String name : g.gemm2EntryPoints(op, c.hiddenSize(), k)) {
                try {
                    m.function(name);
                } catch (CudaException e) {
                    throw new MoeEngineException(GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key() + "=bf16: the kernels have no bf16-Y "
                            + "form of this layer's GEMM2 (" + name + " is missing): use fp32", e);
                }
            }
        }
    }

    MoeRoute.Kernel routerKernel() { return route.kernel(); }

    /** The shared expert's stream, or null when it runs on the layer's stream. */
    CudaStream sharedStream() { return sharedStream; }

    /** The small-batch workspace, or null with the small-batch path off. */
    DecodeWorkspace decodeWorkspace() { return decodeWs; }

    int decodeMaxTokens() { return decodeMaxTokens; }

    /**
     * Whether a call of {@code callTokens} tokens (all its launches) runs the small-batch path. Decided per call, not per
     * launch, so a call's results do not depend on how it is split into launches (stacks ask the same).
     */
    boolean usesDecodePath(int callTokens) { return decode != null && callTokens <= decodeMaxTokens; }

    /** out <- a + b (fp32, {@code n} values) on the layer's stream: the residual of layer stacks. */
    void add(DeviceBuffer a, DeviceBuffer b, DeviceBuffer out, long n) {
        combine.add(stream, a, b, out, n);
    }

    /**
     * The layer's kernels, sized for {@code cap} tokens; the real count is read on the device. No host synchronization.
     * With a shared branch, the shared expert runs on its own stream (forked and joined by events, so a graph captures
     * both branches).
     */
    void enqueueKernels(LayerWorkspace ws, int cap, boolean small) {
        enqueueKernels(ws, cap, StageMark.NONE, sharedStream != null, small);
    }

    /**
     * @param branch run the shared expert on {@link #sharedStream} concurrently with the rest; false: on {@link #stream}
     *               after the routed GEMMs (profiling, where stages are timed one after the other, and the setting off)
     */
    void enqueueKernels(LayerWorkspace ws, int cap, StageMark mark, boolean branch, boolean small) {
        if (small) {
            enqueueDecode(ws, mark);
            return;
        }
        MoeConfig c = config;
        int h = c.hiddenSize(), inter = c.expertIntermediateSize(), e = c.numExperts(), k = c.topK();
        int maxRowBlocks = MoeDispatch.maxRowBlocks(cap, k, e);
        boolean shared = c.hasSharedExpert();
        boolean fp8 = format == Format.FP8;
        if (gatherRows) { // the tokens quantized once (the shared expert's input, if any) before the fork: both branches read them
            dispatch.rowsFp8(stream, ws.x, ws.slotOfEntry, ws.a, ws.aScale, ws.aTokens, ws.aTokensScale, ws.numTokens, cap, h, 0);
            mark.after("quantize tokens once (fp8)");
        }
        if (shared && branch) {
            // the shared expert needs only x: its input conversion and GEMM1 start at once, its GEMM2 too unless gated
            sharedFork.record(stream);
            sharedStream.waitFor(sharedFork);
            enqueueSharedGemm1(ws, cap, sharedStream);
        }
        DeviceBuffer gates = c.sharedExpertGated() ? ws.sharedRowWeight : null;
        if (route.kernel().certified()) {
            MoeRoute.CertifiedBuffers cb = new MoeRoute.CertifiedBuffers(routerBf16, routerNorms, routerWeights, ws.routerSquares,
                    ws.routerFallbackTokens, ws.routerFallbackCount);
            route.certifiedLogits(stream, ws.x, cb, ws.logits, ws.routerPartial, ws.numTokens, cap, h, weights.routerRows);
            mark.after("router logits");
            route.certifiedTopk(stream, c, ws.x, cb, ws.logits, ws.routerPartial, weights.bias, ws.topkExpert, ws.topkWeight, gates,
                    ws.numTokens, cap, h, weights.routerRows);
            mark.after("top-k (certified, fp64 fallback)");
        } else {
            route.logits(stream, ws.x, routerWeights, ws.logits, ws.routerPartial, ws.numTokens, cap, h, weights.routerRows);
            mark.after("router logits");
            route.topk(stream, c, ws.logits, weights.bias, ws.topkExpert, ws.topkWeight, gates, null, ws.numTokens, cap, weights.routerRows);
            mark.after("top-k");
        }
        if (shared && branch) {
            if (gateReady != null) {
                gateReady.record(stream);
                sharedStream.waitFor(gateReady);
            }
            enqueueSharedGemm2(ws, cap, sharedStream);
            sharedJoin.record(sharedStream);
        }
        dispatch.layout(stream, ws.topkExpert, ws.topkWeight, ws.chunkCounts, ws.chunkBase, ws.expertCount, ws.expertStart,
                ws.blockExpert, ws.numRowBlocks, ws.slotOfEntry, ws.rowWeight, gatherRows ? ws.tokenOfSlot : null, ws.numTokens, cap, k,
                e, maxRowBlocks);
        mark.after("dispatch layout");
        RealRows real = RealRows.ofExperts(ws.expertCount, ws.expertStart);
        if (fp8) {
            if (gatherRows) {
                // GEMM1 zero-fills the padding rows itself: only their routing weights need zeroing
                dispatch.padExperts(stream, ws.expertCount, ws.expertStart, null, ws.rowWeight, ws.numTokens, h, e);
                mark.after("pad (row weights)");
                gemm.gemm1Fp8Gathered(stream, ws.aTokens, ws.aTokensScale, ws.tokenOfSlot, weights.w1, weights.w1Scale, ws.hmid,
                        ws.hmidScale, ws.blockExpert, ws.numRowBlocks, maxRowBlocks, h, inter, real);
                mark.after("GEMM1 routed (gathered)");
            } else {
                dispatch.padExperts(stream, ws.expertCount, ws.expertStart, ws.aScale, ws.rowWeight, ws.numTokens, h, e);
                dispatch.rowsFp8(stream, ws.x, ws.slotOfEntry, ws.a, ws.aScale, null, null, ws.numTokens, cap, h, k);
                mark.after("pad + scatter (fp8 quantize)");
                gemm.gemm1Fp8(stream, ws.a, ws.aScale, weights.w1, weights.w1Scale, ws.hmid, ws.hmidScale, ws.blockExpert,
                        ws.numRowBlocks, maxRowBlocks, h, inter, real);
                mark.after("GEMM1 routed");
            }
            gemm.gemm2Fp8(stream, ws.hmid, ws.hmidScale, weights.w2, weights.w2Scale, ws.y, ws.rowWeight, ws.blockExpert,
                    ws.numRowBlocks, maxRowBlocks, inter, h, real);
            mark.after("GEMM2 routed");
        } else {
            dispatch.padExperts(stream, ws.expertCount, ws.expertStart, ws.aScale, ws.rowWeight, ws.numTokens, h, e);
            dispatch.rowsBf16(stream, ws.x, ws.slotOfEntry, ws.a, null, ws.numTokens, cap, h, k);
            mark.after("pad + scatter (bf16)");
            gemm.gemm1Bf16(stream, ws.a, weights.w1, ws.hmid, ws.blockExpert, ws.numRowBlocks, maxRowBlocks, h, inter, bf16Gemm1(real));
            mark.after("GEMM1 routed");
            gemm.gemm2Bf16(stream, ws.hmid, weights.w2, ws.y, ws.rowWeight, ws.blockExpert, ws.numRowBlocks, maxRowBlocks, inter, h,
                    bf16(real));
            mark.after("GEMM2 routed");
        }
        if (shared && !branch) {
            enqueueSharedGemm1(ws, cap, stream);
            enqueueSharedGemm2(ws, cap, stream);
            mark.after("shared expert (input + GEMMs)");
        }
        if (shared && branch) stream.waitFor(sharedJoin);
        combine.combine(stream, ws.y, shared ? ws.yShared : null, ws.slotOfEntry, ws.out, ws.numTokens, cap, h, k);
        mark.after("combine");
    }

    /**
     * The small-batch layer (moe_decode.cu) on the layer's stream: route + plan, GEMM1 + SwiGLU, GEMM2, combine; the
     * shared expert runs inside the two GEMM launches.
     */
    private void enqueueDecode(LayerWorkspace ws, StageMark mark) {
        MoeConfig c = config;
        DecodeWorkspace d = decodeWs;
        boolean fp8 = format == Format.FP8;
        decode.route(stream, d.tile, c, weights.routerRows, fp8, ws.x, weights.router, weights.bias, d.partial, d.logits, ws.topkExpert,
                ws.topkWeight, c.sharedExpertGated() ? ws.sharedRowWeight : null, d.act, d.actScale, d.groupCounters, d.routeCounter,
                ws.expertCount, d.plan, ws.numTokens);
        mark.after("small batch: route (logits, top-k, plan, activations)");
        decode.gemm1(stream, d.tile, c, fp8, d.act, d.actScale, weights.w1, weights.w1Scale, weights.sharedW1, weights.sharedW1Scale,
                d.h32, d.h, d.hScale, d.sharedH32, d.sharedH, d.sharedHScale, d.gemm1Counters, d.plan, ws.numTokens);
        mark.after("small batch: GEMM1 + SwiGLU");
        decode.gemm2(stream, d.tile, c, fp8, d.h, d.hScale, weights.w2, weights.w2Scale, d.sharedH, d.sharedHScale, weights.sharedW2,
                weights.sharedW2Scale, d.y, d.sharedY, ws.topkWeight, c.hasSharedExpert() ? ws.sharedRowWeight : null, d.plan, ws.numTokens);
        mark.after("small batch: GEMM2");
        combine.combine(stream, d.y, d.sharedY, null, ws.out, ws.numTokens, d.tile, c.hiddenSize(), c.topK());
        mark.after("small batch: combine");
    }

    /** The real-row counts the BF16 GEMM2s get: {@code real}, or every row of a used block. */
    private RealRows bf16(RealRows real) { return bf16SkipPadding ? real : RealRows.ALL; }

    /**
     * The real-row counts the BF16 GEMM1s get. When GEMM1 skips and GEMM2 does not, GEMM2 reads SwiGLU rows GEMM1 left
     * stale (any bits, NaN included): a GEMM output row depends only on its own input row, and padding rows' outputs are
     * never read by combine, so no real row can see them.
     */
    private RealRows bf16Gemm1(RealRows real) { return bf16Gemm1SkipPadding ? real : RealRows.ALL; }

    /** The shared expert's input (bf16, or e4m3 per 128 with scales; padding rows' scales zeroed) and GEMM1 + SwiGLU, on {@code s}. */
    private void enqueueSharedGemm1(LayerWorkspace ws, int cap, CudaStream s) {
        int h = config.hiddenSize(), si = config.sharedIntermediateSize();
        int blocks = (cap + MoeDispatch.BLOCK_M - 1) / MoeDispatch.BLOCK_M;
        RealRows real = RealRows.singleGroup(ws.numTokens);
        dispatch.padShared(s, ws.aSharedScale, ws.sharedNumBlocks, ws.numTokens, h);
        if (format == Format.FP8) {
            // (gathering: the layer quantized the tokens into this buffer before the fork)
            if (!gatherRows) dispatch.rowsFp8(s, ws.x, ws.slotOfEntry, ws.a, ws.aScale, ws.aShared, ws.aSharedScale, ws.numTokens, cap, h, 0);
            gemm.gemm1Fp8(s, ws.aShared, ws.aSharedScale, weights.sharedW1, weights.sharedW1Scale, ws.hShared, ws.hSharedScale,
                    ws.sharedBlockExpert, ws.sharedNumBlocks, blocks, h, si, real);
        } else {
            dispatch.rowsBf16(s, ws.x, ws.slotOfEntry, ws.a, ws.aShared, ws.numTokens, cap, h, 0);
            gemm.gemm1Bf16(s, ws.aShared, weights.sharedW1, ws.hShared, ws.sharedBlockExpert, ws.sharedNumBlocks, blocks, h, si,
                    bf16Gemm1(real));
        }
    }

    /** The shared expert's GEMM2, rows weighted 1 or by Qwen2-MoE's gate (written by the route kernel), into yShared. */
    private void enqueueSharedGemm2(LayerWorkspace ws, int cap, CudaStream s) {
        int h = config.hiddenSize(), si = config.sharedIntermediateSize();
        int blocks = (cap + MoeDispatch.BLOCK_M - 1) / MoeDispatch.BLOCK_M;
        RealRows real = RealRows.singleGroup(ws.numTokens);
        if (format == Format.FP8) {
            gemm.gemm2Fp8(s, ws.hShared, ws.hSharedScale, weights.sharedW2, weights.sharedW2Scale, ws.yShared, ws.sharedRowWeight,
                    ws.sharedBlockExpert, ws.sharedNumBlocks, blocks, si, h, real);
        } else {
            gemm.gemm2Bf16(s, ws.hShared, weights.sharedW2, ws.yShared, ws.sharedRowWeight, ws.sharedBlockExpert, ws.sharedNumBlocks,
                    blocks, si, h, bf16(real));
        }
    }

    /**
     * The certified router's bf16 router copy and row norms from the weights' fp32 router (on {@code stream}); returns
     * how many router values bf16 does not hold exactly (waits for the stream: once per layer at load).
     */
    private static long prepareCertified(CudaContext cx, CudaModule module, CudaStream stream, DeviceWeights weights,
                                         DeviceBuffer bf16, DeviceBuffer norms, int hidden) {
        try (DeviceBuffer inexact = DeviceBuffer.ints(cx, "router values bf16 does not hold", 1)) {
            inexact.memset32(0, stream);
            MoeRoute.prepareCertified(module, stream, weights.router, bf16, norms, inexact, weights.routerRows, hidden);
            stream.synchronize("certified router preparation");
            int[] n = new int[1];
            inexact.download(n);
            return n[0];
        }
    }

    /**
     * Closes what this owns: the shared branch's events, the small-batch workspace, the GEMM work counters, the fp64
     * router copy, the shared branch's stream (after everything that may have used it). The first failure is thrown,
     * the others suppressed in it. A second close throws.
     */
    @Override
    public void close() {
        if (closed) throw new MoeEngineException("the kernel sequence of a GPU engine was closed twice");
        closed = true;
        List<AutoCloseable> parts = new ArrayList<>();
        for (CudaEvent ev : new CudaEvent[] {sharedFork, sharedJoin, gateReady}) if (ev != null) parts.add(ev);
        if (decodeWs != null) parts.add(decodeWs);
        if (workCounters != null) parts.add(workCounters);
        if (routerWeights != weights.router) parts.add(routerWeights);
        if (routerBf16 != null) parts.add(routerBf16);
        if (routerNorms != null) parts.add(routerNorms);
        if (sharedStream != null) parts.add(sharedStream);
        Closeables.closeAll(parts);
    }
}
