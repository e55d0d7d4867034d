package dev.sparkmoe.gpu;

import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.cuda.Cuda;
import dev.sparkmoe.cuda.CudaContext;
import dev.sparkmoe.cuda.CudaEvent;
import dev.sparkmoe.cuda.CudaException;
import dev.sparkmoe.cuda.CudaGraph;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.kernels.GroupedGemm;
import dev.sparkmoe.kernels.GroupedGemm.RealRows;
import dev.sparkmoe.kernels.GroupedGemmConfig;
import dev.sparkmoe.kernels.MoeCombine;
import dev.sparkmoe.kernels.MoeDecode;
import dev.sparkmoe.kernels.MoeDispatch;
import dev.sparkmoe.kernels.MoeRoute;
import dev.sparkmoe.kernels.WeightPacking.Format;
import dev.sparkmoe.model.MoeConfig;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The single-GPU MoE layer: route -> dispatch (padded expert-contiguous layout, FP8 quantization) -> grouped GEMM1 with
 * SwiGLU -> grouped GEMM2 with the routing weight -> deterministic combine, plus the shared expert, with no host
 * synchronization inside (expert counts stay on the device), so every token-count bucket runs as one CUDA graph.
 * Weights are uploaded once and stay resident until {@link #close()}.
 *
 * <p>{@link #forward} is thread-safe ({@link ForwardMode}): each caller copies its input into a pinned staging slot of
 * its own (from a small pool) on its own thread; the engine lock is held only while the upload, the layer and the
 * download are queued on the engine's stream (one workspace: stream order keeps it safe) and an event is recorded; the
 * caller then waits for its event and copies its output out, again outside the lock. Results are bitwise the same
 * whatever the concurrency. Several engines of one device can also run as one device-resident stack
 * ({@link GpuMoeStack}).
 */
public final class GpuMoeEngine implements MoeEngine {
    /** System property keys of {@link GpuEngineSettings} (documented there). */
    public static final String GRAPHS_PROPERTY = GpuEngineSettings.GRAPHS.key();
    public static final String MAX_TOKENS_PROPERTY = GpuEngineSettings.MAX_TOKENS.key();
    public static final String REFERENCE_GEMM_PROPERTY = GpuEngineSettings.REFERENCE_GEMM.key();

    private final MoeConfig config;
    private final int layer;
    private final Precision precision;
    private final Format format;
    private final CudaContext ctx;
    private final CudaModule module;
    private final CudaStream stream;
    private final MoeRoute route;
    /** What the router kernel reads: the weights' fp32 router, or ({@link MoeRoute.Kernel#wantsF64Weights}) an fp64 copy owned by this engine. */
    private final DeviceBuffer routerWeights;
    private final MoeDispatch dispatch;
    private final MoeCombine combine;
    private final GroupedGemm gemm;
    private final DeviceWeights weights;
    private final boolean useGraphs;
    private final int maxTokens;
    private final int fp8PromotionInterval;
    private final Map<Integer, CudaGraph> graphs = new HashMap<>();
    private final ForwardMode mode;
    private final StagingPool<StagingSlot> staging;
    /** OVERLAPPED only (else null): copy streams and the events of the double-buffered device staging, by ring index. */
    private final CudaStream uploadStream, downloadStream;
    private final CudaEvent[] inReady, inFree, outReady, outFree;
    /** Stack ordering: recorded after this engine's layer / after this engine consumed the previous layer's buffers. */
    private final CudaEvent layerDone, inputConsumed;
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
    /** GEMM2 stores the expert outputs (Y, Y shared) in bf16 ({@link GpuEngineSettings#EXPERT_OUTPUT_PRECISION}). */
    private final boolean yBf16;
    private final MoeDispatch.ScatterKernel scatterKernel;
    /** FP8: the routed GEMM1 gathers its rows from the once-quantized tokens ({@link GpuEngineSettings#GATHER_ROWS}). */
    private final boolean gatherRows;
    /**
     * The small-batch path ({@link GpuEngineSettings#DECODE_MAX_TOKENS}): calls of at most {@code decodeMaxTokens}
     * tokens run {@link MoeDecode}'s three kernels on {@code decodeWs}; both null (and the limit 0) when off.
     */
    private final int decodeMaxTokens;
    private final MoeDecode decode;
    private final DecodeWorkspace decodeWs;
    private int inRing, outRing;
    private LayerWorkspace workspace;
    private volatile boolean closed;

    private static final AtomicLong NEXT_LOCK_ORDER = new AtomicLong();
    /** Engines are locked in increasing order of this number when several are held at once (stacks): no deadlock. */
    final long lockOrder = NEXT_LOCK_ORDER.incrementAndGet();
    /** Held while queuing work on the stream or touching the workspace, graphs and rings; never while waiting for the GPU (except SERIAL). */
    final ReentrantLock lock = new ReentrantLock();

    /** Why the GPU engine cannot run here, or empty when it can (device 0 checked). */
    public static Optional<String> unavailableReason() {
        return unavailableReason(0);
    }

    public static Optional<String> unavailableReason(int ordinal) {
        if (!CudaModule.kernelsPresent()) {
            return Optional.of("the CUDA kernels (" + CudaModule.KERNELS_RESOURCE + ") are not in this build: it was built without nvcc");
        }
        Optional<String> driver = Cuda.unavailableReason();
        if (driver.isPresent()) return driver;
        try {
            int cc = CudaContext.computeCapability(ordinal);
            if (cc < 90) return Optional.of("GPU " + ordinal + " has compute capability " + cc / 10 + "." + cc % 10 + "; the kernels need 9.0 (Hopper)");
        } catch (CudaException e) {
            return Optional.of(e.getMessage());
        }
        return Optional.empty();
    }

    /** Uploads layer {@code w} to GPU {@code ordinal} in {@code p} (NATIVE: bf16 GEMMs; FP8: e4m3 with block scales). */
    public static GpuMoeEngine open(MoeLayerWeights w, Precision p, int ordinal) {
        checkSupported(w.config());
        return new GpuMoeEngine(w.config(), w.layer(), p, ordinal, (ctx, m, s) -> DeviceWeights.upload(ctx, w, formatOf(p)));
    }

    /** An engine over random weights of {@code c}'s shapes generated on the device (benchmarks of real shapes). */
    public static GpuMoeEngine openSynthetic(MoeConfig c, Precision p, int ordinal, long seed) {
        checkSupported(c);
        return new GpuMoeEngine(c, c.moeLayerList().isEmpty() ? 0 : c.moeLayerList().get(0), p, ordinal,
                (ctx, m, s) -> DeviceWeights.synthetic(ctx, m, s, c, formatOf(p), seed));
    }

    private interface WeightSource { DeviceWeights load(CudaContext ctx, CudaModule m, CudaStream s); }

    static Format formatOf(Precision p) { return p == Precision.FP8 ? Format.FP8 : Format.BF16; }

    /** The shapes the kernels take; anything else is refused here with the reason, never at launch. */
    static void checkSupported(MoeConfig c) {
        require(c.hiddenSize() % 128 == 0, "hidden size " + c.hiddenSize() + " is not a multiple of 128");
        require(c.expertIntermediateSize() % 128 == 0, "expert intermediate size " + c.expertIntermediateSize() + " is not a multiple of 128");
        require(!c.hasSharedExpert() || c.sharedIntermediateSize() % 128 == 0,
                "shared expert intermediate size " + c.sharedIntermediateSize() + " is not a multiple of 128");
        require(c.numExperts() <= MoeRoute.MAX_EXPERTS, c.numExperts() + " routed experts exceed the route kernel's " + MoeRoute.MAX_EXPERTS);
        require(c.topK() <= MoeRoute.MAX_TOP_K, "top-k " + c.topK() + " exceeds " + MoeRoute.MAX_TOP_K);
        require(c.nGroup() <= 32, "n_group " + c.nGroup() + " exceeds 32");
    }

    private static void require(boolean ok, String why) {
        if (!ok) throw new MoeEngineException("the GPU engine cannot run this layer: " + why);
    }

    private GpuMoeEngine(MoeConfig c, int layer, Precision p, int ordinal, WeightSource source) {
        Optional<String> why = unavailableReason(ordinal);
        if (why.isPresent()) throw new MoeEngineException("the GPU engine is not available: " + why.get());
        this.config = c;
        this.layer = layer;
        this.precision = p;
        this.format = formatOf(p);
        this.useGraphs = GpuEngineSettings.GRAPHS.fromSystemProperties();
        this.maxTokens = GpuEngineSettings.MAX_TOKENS.fromSystemProperties();
        MoeRoute.Kernel router;
        try {
            router = MoeRoute.Kernel.parse(GpuEngineSettings.ROUTER_KERNEL.fromSystemProperties());
        } catch (IllegalArgumentException e) {
            throw new MoeEngineException(GpuEngineSettings.ROUTER_KERNEL.key() + ": " + e.getMessage());
        }
        TokenBuckets.bucket(1, maxTokens); // validates the setting
        String yPrecision = GpuEngineSettings.EXPERT_OUTPUT_PRECISION.fromSystemProperties();
        if (!yPrecision.equalsIgnoreCase("auto") && !yPrecision.equalsIgnoreCase("fp32") && !yPrecision.equalsIgnoreCase("bf16")) {
            throw new MoeEngineException(GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key() + " must be auto, fp32 or bf16, got '" + yPrecision + "'");
        }
        boolean referenceGemm = GpuEngineSettings.REFERENCE_GEMM.fromSystemProperties();
        this.fp8PromotionInterval = GpuEngineSettings.FP8_PROMOTION_INTERVAL.fromSystemProperties();
        if (fp8PromotionInterval != 128 && fp8PromotionInterval != 32) {
            throw new MoeEngineException(GpuEngineSettings.FP8_PROMOTION_INTERVAL.key() + " must be 128 or 32, got " + fp8PromotionInterval);
        }
        int computeCapability = CudaContext.computeCapability(ordinal);
        if (yPrecision.equalsIgnoreCase("auto")) {
            // bf16 on the fast path; fp32 wherever accuracy was asked for (reference GEMMs, promotion every 32) or the
            // sm_90a kernels are missing
            this.yBf16 = !referenceGemm && computeCapability == 90 && fp8PromotionInterval == 128;
        } else {
            this.yBf16 = yPrecision.equalsIgnoreCase("bf16");
        }
        if (yBf16 && referenceGemm) {
            throw new MoeEngineException(GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key() + "=bf16 needs the production GEMMs: the "
                    + "reference GEMMs (" + GpuEngineSettings.REFERENCE_GEMM.key() + "=true) store fp32 only");
        }
        if (yBf16 && computeCapability != 90) {
            throw new MoeEngineException(GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key() + "=bf16 needs the sm_90a GEMM kernels; GPU "
                    + ordinal + " has compute capability " + computeCapability / 10 + "." + computeCapability % 10 + " (use fp32)");
        }
        try {
            this.scatterKernel = MoeDispatch.ScatterKernel.parse(GpuEngineSettings.SCATTER_KERNEL.fromSystemProperties());
        } catch (IllegalArgumentException e) {
            throw new MoeEngineException(GpuEngineSettings.SCATTER_KERNEL.key() + ": " + e.getMessage());
        }
        this.gatherRows = formatOf(p) == Format.FP8 && GpuEngineSettings.GATHER_ROWS.fromSystemProperties();
        if (gatherRows && (referenceGemm || fp8PromotionInterval != 128 || computeCapability != 90)) {
            throw new MoeEngineException(GpuEngineSettings.GATHER_ROWS.key() + "=true needs the production sm_90a FP8 GEMMs with "
                    + "promotion every 128 (referenceGemm " + referenceGemm + ", fp8PromotionInterval " + fp8PromotionInterval
                    + ", compute capability " + computeCapability / 10 + "." + computeCapability % 10 + ")");
        }
        if (p == Precision.FP8 && fp8PromotionInterval == 32 && c.hiddenSize() % 256 != 0) {
            throw new MoeEngineException(GpuEngineSettings.FP8_PROMOTION_INTERVAL.key() + "=32 needs a hidden size that is a "
                    + "multiple of 256; this layer's is " + c.hiddenSize());
        }
        this.mode = ForwardMode.parse(GpuEngineSettings.FORWARD_MODE.fromSystemProperties());
        int slots = GpuEngineSettings.STAGING_SLOTS.fromSystemProperties();
        if (slots < 1) throw new MoeEngineException(GpuEngineSettings.STAGING_SLOTS.key() + " must be >= 1, got " + slots);
        long slotBytes = GpuEngineSettings.STAGING_BYTES.fromSystemProperties();
        if (slotBytes < 1) throw new MoeEngineException(GpuEngineSettings.STAGING_BYTES.key() + " must be positive, got " + slotBytes);
        CudaContext cx = CudaContext.open(ordinal);
        List<AutoCloseable> made = new ArrayList<>(); // closed in reverse on failure
        made.add(cx);
        try {
            this.module = add(made, CudaModule.loadKernels(cx));
            boolean branch = c.hasSharedExpert() && GpuEngineSettings.SHARED_EXPERT_STREAM.fromSystemProperties();
            // with a shared branch the layer's own kernels get the highest priority, the branch the lowest: the CTA
            // scheduler then gives the branch only what the critical path leaves idle
            this.stream = add(made, new CudaStream(cx, branch ? CudaStream.Priority.HIGHEST : CudaStream.Priority.DEFAULT));
            this.sharedStream = branch ? add(made, new CudaStream(cx, CudaStream.Priority.LOWEST)) : null;
            this.sharedFork = branch ? add(made, CudaEvent.forOrdering(cx, "layer " + layer + " shared expert fork")) : null;
            this.sharedJoin = branch ? add(made, CudaEvent.forOrdering(cx, "layer " + layer + " shared expert join")) : null;
            this.gateReady = branch && c.sharedExpertGated()
                    ? add(made, CudaEvent.forOrdering(cx, "layer " + layer + " shared expert gates")) : null;
            this.bf16SkipPadding = GpuEngineSettings.BF16_SKIP_PADDING_HALVES.fromSystemProperties();
            this.bf16Gemm1SkipPadding = bf16SkipPadding || GpuEngineSettings.BF16_GEMM1_SKIP_PADDING_HALVES.fromSystemProperties();
            this.weights = add(made, source.load(cx, module, stream));
            this.route = new MoeRoute(module, cx.multiprocessorCount(), router);
            if (router.wantsF64Weights()) {
                this.routerWeights = add(made, DeviceBuffer.doubles(cx, "router (fp64)", weights.router.count()));
                route.widenWeights(stream, weights.router, routerWeights);
            } else {
                this.routerWeights = weights.router;
            }
            this.dispatch = new MoeDispatch(module, scatterKernel);
            int small = GpuEngineSettings.DECODE_MAX_TOKENS.fromSystemProperties();
            if (small < 0 || small > MoeDecode.MAX_TOKENS) {
                throw new MoeEngineException(GpuEngineSettings.DECODE_MAX_TOKENS.key() + " must be 0.." + MoeDecode.MAX_TOKENS + ", got " + small);
            }
            // the reference GEMMs are for exact cross-checks of the grouped path: they keep it for every size
            if (referenceGemm) small = 0;
            this.decodeMaxTokens = small;
            this.decode = small > 0 ? new MoeDecode(module, cx.multiprocessorCount()) : null;
            this.decodeWs = small > 0 ? add(made, new DecodeWorkspace(cx, stream, c, format, weights.routerRows, small)) : null;
            this.combine = new MoeCombine(module);
            this.gemm = new GroupedGemm(module, cx.multiprocessorCount(), referenceGemm, fp8PromotionInterval, yBf16);
            if (yBf16) requireBf16YKernels(c, module, gemm);
            boolean overlap = mode == ForwardMode.OVERLAPPED;
            this.uploadStream = overlap ? add(made, new CudaStream(cx)) : null;
            this.downloadStream = overlap ? add(made, new CudaStream(cx)) : null;
            this.inReady = overlap ? events(made, cx, "x staged") : null;
            this.inFree = overlap ? events(made, cx, "x staging free") : null;
            this.outReady = overlap ? events(made, cx, "out staged") : null;
            this.outFree = overlap ? events(made, cx, "out staging free") : null;
            this.layerDone = add(made, CudaEvent.forOrdering(cx, "layer " + layer + " done"));
            this.inputConsumed = add(made, CudaEvent.forOrdering(cx, "layer " + layer + " input consumed"));
        } catch (RuntimeException e) {
            for (int i = made.size() - 1; i >= 0; i--) {
                try { made.get(i).close(); } catch (Exception x) { e.addSuppressed(x); }
            }
            throw e instanceof MoeEngineException ? e : new MoeEngineException("GPU engine setup failed: " + e.getMessage(), e);
        }
        this.ctx = cx;
        this.staging = new StagingPool<>("staging of the GPU engine of layer " + layer, slots, slotBytes, new StagingPool.Allocator<>() {
            @Override public StagingSlot allocate(long bytes) { return new StagingSlot(cx, bytes); }
            @Override public long capacity(StagingSlot slot) { return slot.capacity(); }
        });
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
            String name = g.config(GroupedGemmConfig.Gemm.GEMM2, op, 1, c.hiddenSize(), k).kernel() + "_ybf16";
            try {
                m.function(name);
            } catch (CudaException e) {
                throw new MoeEngineException(GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key() + "=bf16: the kernels have no bf16-Y "
                        + "form of this layer's GEMM2 (" + name + " is missing): use fp32", e);
            }
        }
    }

    private static <T extends AutoCloseable> T add(List<AutoCloseable> made, T x) {
        made.add(x);
        return x;
    }

    private static CudaEvent[] events(List<AutoCloseable> made, CudaContext cx, String what) {
        return new CudaEvent[] {add(made, CudaEvent.forOrdering(cx, what + " 0")), add(made, CudaEvent.forOrdering(cx, what + " 1"))};
    }

    @Override public MoeConfig config() { return config; }
    @Override public int layer() { return layer; }
    @Override public Precision precision() { return precision; }

    @Override
    public String deviceDescription() {
        return "gpu " + ctx.ordinal() + ": " + ctx.name() + " (sm_" + ctx.computeCapability() + ", " + ctx.multiprocessorCount()
                + " SMs), " + (format == Format.FP8 ? "FP8 e4m3" : "BF16") + " grouped GEMMs"
                + (format == Format.FP8 && fp8PromotionInterval != 128 ? " (promoted every " + fp8PromotionInterval + " of K)" : "")
                + (format == Format.BF16 && bf16SkipPadding ? " (padding halves skipped)" : "")
                + (format == Format.BF16 && bf16Gemm1SkipPadding && !bf16SkipPadding ? " (GEMM1 padding halves skipped)" : "")
                + ", router logits " + route.kernel().name().toLowerCase(java.util.Locale.ROOT)
                + (yBf16 ? ", expert outputs bf16" : "")
                + (gatherRows ? ", GEMM1 gathers its rows" : "")
                + (scatterKernel != MoeDispatch.ScatterKernel.PREFETCH ? ", scatter " + scatterKernel.name().toLowerCase(java.util.Locale.ROOT) : "")
                + (sharedStream != null ? ", shared expert on a side stream" : "")
                + (decodeMaxTokens > 0 ? ", small-batch path up to " + decodeMaxTokens + " tokens" : "")
                + (useGraphs ? ", CUDA graphs" : "");
    }

    /** Bytes of expert weights (and scales) resident on the device. */
    public long expertWeightBytes() { return weights.expertBytes(); }

    @Override
    public void forward(float[] hidden, int tokens, float[] out) {
        MoeEngine.checkInput(config, hidden, tokens, out);
        if (tokens == 0) return;
        requireOpen();
        int h = config.hiddenSize();
        StagingSlot slot = staging.acquire(slotBytes(tokens, maxTokens));
        boolean small = usesDecodePath(tokens);
        try {
            for (int i = 0, n = TokenBuckets.launches(tokens, maxTokens); i < n; i++) {
                int t = TokenBuckets.launchTokens(tokens, maxTokens, i);
                int offset = i * maxTokens * h;
                if (mode == ForwardMode.SERIAL) {
                    lock.lock();
                    try {
                        requireOpen();
                        slot.copyIn(hidden, offset, t * h);
                        enqueueCall(slot, t, small);
                        slot.awaitAndCopyOut(what(t), out, offset, t * h);
                    } finally {
                        lock.unlock();
                    }
                } else {
                    slot.copyIn(hidden, offset, t * h);
                    lock.lock();
                    try {
                        requireOpen();
                        enqueueCall(slot, t, small);
                    } finally {
                        lock.unlock();
                    }
                    slot.awaitAndCopyOut(what(t), out, offset, t * h);
                }
            }
        } finally {
            staging.release(slot);
        }
    }

    /** Bytes of staging for a call of {@code tokens} split into launches of at most {@code launchLimit}: its first launch's bucket. */
    long slotBytes(int tokens, int launchLimit) {
        return 4L * TokenBuckets.bucket(Math.min(tokens, launchLimit), launchLimit) * config.hiddenSize();
    }

    private String what(int tokens) { return "MoE layer " + layer + " (" + tokens + " tokens)"; }

    void requireOpen() {
        if (closed) throw new MoeEngineException("the GPU engine of layer " + layer + " is closed");
    }

    /**
     * Whether a call of {@code callTokens} tokens (all its launches) runs the small-batch path. Decided per call, not per
     * launch, so a call's results do not depend on how it is split into launches (stacks ask the same).
     */
    boolean usesDecodePath(int callTokens) { return decode != null && callTokens <= decodeMaxTokens; }

    /** Queues upload, layer and download of one launch and records the slot's event. Lock held. */
    private void enqueueCall(StagingSlot slot, int tokens, boolean small) {
        LayerWorkspace ws = prepare(tokens);
        enqueueInput(ws, slot, tokens);
        enqueueLayer(ws, tokens, small);
        enqueueOutput(ws, slot, tokens);
    }

    /** The workspace for a launch of {@code tokens} (grown first if needed). Lock held. */
    LayerWorkspace prepare(int tokens) {
        return workspaceFor(TokenBuckets.bucket(tokens, maxTokens));
    }

    /**
     * Tests: fills the routed and shared SwiGLU outputs of the workspace serving {@code tokens} with the 32-bit pattern
     * {@code bits} (e.g. two bf16 NaNs), so rows a GEMM1 skips hold that poison in the next call, zeroes Y and Y shared
     * (so what the next call leaves there is its own), and waits for it.
     */
    LayerWorkspace fillSwiGluOutputs(int tokens, int bits) {
        lock.lock();
        try {
            requireOpen();
            LayerWorkspace ws = prepare(tokens);
            ctx.makeCurrent();
            ws.hmid.memset32(bits, stream);
            if (ws.hShared != null) ws.hShared.memset32(bits, stream);
            ws.y.memset32(0, stream);
            if (ws.yShared != null) ws.yShared.memset32(0, stream);
            stream.synchronize("filling the SwiGLU outputs");
            return ws;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Tests: fills every data buffer of the small-batch path (router partials and logits, activations, SwiGLU rows and
     * scales, Y) with the 32-bit pattern {@code bits} (e.g. NaN) and waits, so a next call that read anything it did not
     * write in that call would show it. Counters and plan are left alone (the kernels need them zero / write them first).
     */
    void fillDecodeBuffers(int bits) {
        lock.lock();
        try {
            requireOpen();
            if (decodeWs == null) throw new MoeEngineException("the small-batch path is off in this engine");
            ctx.makeCurrent();
            DecodeWorkspace d = decodeWs;
            for (DeviceBuffer b : new DeviceBuffer[] {d.partial, d.logits, d.act, d.actScale, d.h32, d.h, d.hScale, d.sharedH32, d.sharedH,
                    d.sharedHScale, d.y, d.sharedY}) {
                if (b != null && b.byteSize() % 4 == 0) b.memset32(bits, stream);
            }
            stream.synchronize("filling the small-batch buffers");
        } finally {
            lock.unlock();
        }
    }

    /** Queues the copy of the slot's input into x and sets the token count (in stream order before the layer). Lock held. */
    void enqueueInput(LayerWorkspace ws, StagingSlot slot, int tokens) {
        long bytes = 4L * tokens * config.hiddenSize();
        ctx.makeCurrent();
        if (mode == ForwardMode.OVERLAPPED) {
            int i = inRing;
            inRing ^= 1;
            uploadStream.waitFor(inFree[i]);              // the layer has copied this staging buffer's previous contents
            ws.stagingIn[i].uploadAsync(slot.in, bytes, 0, uploadStream);
            inReady[i].record(uploadStream);
            stream.waitFor(inReady[i]);
            ws.x.copyFrom(ws.stagingIn[i], 0, bytes, stream);
            inFree[i].record(stream);
        } else {
            ws.x.uploadAsync(slot.in, bytes, 0, stream);
        }
        ws.numTokens.memset32(tokens, stream);
    }

    /**
     * Stacks: queues this layer's input from the previous layer's workspace on this engine's stream - its output, or with
     * {@code residual} its output + its input (fp32, as the host's {@code out[k] += x[k]}) - with the events that order
     * the two streams both ways. Both engines' locks held.
     */
    void enqueueInputFrom(GpuMoeEngine prev, LayerWorkspace prevWs, LayerWorkspace ws, int tokens, boolean residual) {
        long n = (long) tokens * config.hiddenSize();
        ctx.makeCurrent();
        boolean other = prev != this;
        if (other) {
            prev.layerDone.record(prev.stream);
            stream.waitFor(prev.layerDone);
        }
        if (residual) combine.add(stream, prevWs.out, prevWs.x, ws.x, n);
        else ws.x.copyFrom(prevWs.out, 0, 4 * n, stream);
        if (other) {
            inputConsumed.record(stream);
            prev.stream.waitFor(inputConsumed); // prev's later work may overwrite its x and out only after this read
        }
        ws.numTokens.memset32(tokens, stream);
    }

    /** Stacks: out <- out + x (the residual of the last layer, fp32). Lock held. */
    void enqueueResidual(LayerWorkspace ws, int tokens) {
        ctx.makeCurrent();
        combine.add(stream, ws.out, ws.x, ws.out, (long) tokens * config.hiddenSize());
    }

    /**
     * Queues the layer for the token count already queued into the workspace; {@code small}: the small-batch path
     * ({@link #usesDecodePath} of the whole call). Lock held.
     */
    void enqueueLayer(LayerWorkspace ws, int tokens, boolean small) {
        runLayer(ws, TokenBuckets.bucket(tokens, maxTokens), small);
    }

    /** Queues the copy of out into the slot's output and records the slot's event after it. Lock held. */
    void enqueueOutput(LayerWorkspace ws, StagingSlot slot, int tokens) {
        long bytes = 4L * tokens * config.hiddenSize();
        ctx.makeCurrent();
        if (mode == ForwardMode.OVERLAPPED) {
            int i = outRing;
            outRing ^= 1;
            stream.waitFor(outFree[i]);                   // this staging buffer's previous download is done
            ws.stagingOut[i].copyFrom(ws.out, 0, bytes, stream);
            outReady[i].record(stream);
            downloadStream.waitFor(outReady[i]);
            ws.stagingOut[i].downloadAsync(slot.out, bytes, downloadStream);
            outFree[i].record(downloadStream);
            slot.done.record(downloadStream);
        } else {
            ws.out.downloadAsync(slot.out, bytes, stream);
            slot.done.record(stream);
        }
    }

    StagingPool<StagingSlot> staging() { return staging; }

    int maxTokens() { return maxTokens; }

    int ordinal() { return ctx.ordinal(); }

    ForwardMode forwardMode() { return mode; }

    /** Queues the whole layer for the token count already in the workspace: the bucket's graph, or the kernels. */
    private void runLayer(LayerWorkspace ws, int bucket, boolean small) {
        if (!useGraphs) {
            enqueueKernels(ws, bucket, small);
            return;
        }
        int key = small ? -bucket : bucket; // a bucket can have a graph of each path
        CudaGraph g = graphs.get(key);
        if (g == null) {
            g = CudaGraph.capture(stream, "MoE layer " + layer + " bucket " + bucket + (small ? " (small-batch path)" : ""),
                    () -> enqueueKernels(ws, bucket, small));
            graphs.put(key, g);
        }
        g.launch(stream);
    }

    private LayerWorkspace workspaceFor(int bucket) {
        if (workspace == null || workspace.capacity() < bucket) {
            // queued work (of this engine, or of a stack reading this workspace: it made our stream wait) may still use it
            synchronizeStreams("growing the workspace");
            dropGraphs();
            if (workspace != null) workspace.close();
            workspace = null;
            workspace = new LayerWorkspace(ctx, config, format, weights.routerRows, bucket, ctx.multiprocessorCount(),
                    mode == ForwardMode.OVERLAPPED, yBf16 ? 2 : 4, gatherRows);
        }
        return workspace;
    }

    private void synchronizeStreams(String what) {
        stream.synchronize(what);
        if (sharedStream != null) sharedStream.synchronize(what);
        if (uploadStream != null) uploadStream.synchronize(what);
        if (downloadStream != null) downloadStream.synchronize(what);
    }

    private void dropGraphs() {
        for (CudaGraph g : graphs.values()) g.close();
        graphs.clear();
    }

    /**
     * The layer's kernels, sized for {@code cap} tokens; the real count is read on the device. No host synchronization.
     * With a shared branch, the shared expert runs on its own stream (forked and joined by events, so a graph captures
     * both branches).
     */
    private void enqueueKernels(LayerWorkspace ws, int cap, boolean small) {
        enqueueKernels(ws, cap, stage -> { }, sharedStream != null, small);
    }

    /** Called between the stages of a layer (profiling records an event there; the normal path does nothing). */
    private interface StageMark { void after(String stage); }

    /**
     * @param branch run the shared expert on {@link #sharedStream} concurrently with the rest; false: on {@link #stream}
     *               after the routed GEMMs (profiling, where stages are timed one after the other, and the setting off)
     */
    private void enqueueKernels(LayerWorkspace ws, int cap, StageMark mark, boolean branch, boolean small) {
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
        route.logits(stream, ws.x, routerWeights, ws.logits, ws.routerPartial, ws.numTokens, cap, h, weights.routerRows);
        mark.after("router logits");
        route.topk(stream, c, ws.logits, weights.bias, ws.topkExpert, ws.topkWeight, c.sharedExpertGated() ? ws.sharedRowWeight : null,
                null, ws.numTokens, cap, weights.routerRows);
        mark.after("top-k");
        if (shared && branch) {
            if (gateReady != null) {
                gateReady.record(stream);
                sharedStream.waitFor(gateReady);
            }
            enqueueSharedGemm2(ws, cap, sharedStream);
            sharedJoin.record(sharedStream);
        }
        dispatch.layout(stream, ws.topkExpert, ws.topkWeight, ws.chunkCounts, ws.chunkBase, ws.expertCount, ws.expertStart,
                ws.blockExpert, ws.numRowBlocks, ws.slotOfEntry, ws.rowWeight, ws.tokenOfSlot, ws.numTokens, cap, k, e, maxRowBlocks);
        mark.after("dispatch layout");
        RealRows real = RealRows.ofExperts(ws.expertCount, ws.expertStart);
        if (gatherRows) {
            dispatch.padExpertWeights(stream, ws.expertCount, ws.expertStart, ws.rowWeight, e);
            mark.after("pad (row weights)");
            gemm.gemm1Fp8Gathered(stream, ws.aTokens, ws.aTokensScale, ws.tokenOfSlot, weights.w1, weights.w1Scale, ws.hmid,
                    ws.hmidScale, ws.blockExpert, ws.numRowBlocks, maxRowBlocks, h, inter, real);
            mark.after("GEMM1 routed (gathered)");
            gemm.gemm2Fp8(stream, ws.hmid, ws.hmidScale, weights.w2, weights.w2Scale, ws.y, ws.rowWeight, ws.blockExpert,
                    ws.numRowBlocks, maxRowBlocks, inter, h, real);
            mark.after("GEMM2 routed");
        } else {
        dispatch.padExperts(stream, ws.expertCount, ws.expertStart, ws.a, ws.aScale, ws.rowWeight, ws.numTokens, h, e, format.bytes());
        if (fp8) {
            dispatch.rowsFp8(stream, ws.x, ws.slotOfEntry, ws.a, ws.aScale, null, null, ws.numTokens, cap, h, k);
            mark.after("pad + scatter (fp8 quantize)");
            gemm.gemm1Fp8(stream, ws.a, ws.aScale, weights.w1, weights.w1Scale, ws.hmid, ws.hmidScale, ws.blockExpert,
                    ws.numRowBlocks, maxRowBlocks, h, inter, real);
            mark.after("GEMM1 routed");
            gemm.gemm2Fp8(stream, ws.hmid, ws.hmidScale, weights.w2, weights.w2Scale, ws.y, ws.rowWeight, ws.blockExpert,
                    ws.numRowBlocks, maxRowBlocks, inter, h, real);
            mark.after("GEMM2 routed");
        } else {
            dispatch.rowsBf16(stream, ws.x, ws.slotOfEntry, ws.a, null, ws.numTokens, cap, h, k);
            mark.after("pad + scatter (bf16)");
            gemm.gemm1Bf16(stream, ws.a, weights.w1, ws.hmid, ws.blockExpert, ws.numRowBlocks, maxRowBlocks, h, inter, bf16Gemm1(real));
            mark.after("GEMM1 routed");
            gemm.gemm2Bf16(stream, ws.hmid, weights.w2, ws.y, ws.rowWeight, ws.blockExpert, ws.numRowBlocks, maxRowBlocks, inter, h,
                    bf16(real));
            mark.after("GEMM2 routed");
        }
        } // gatherRows
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
     * The small-batch layer (moe_decode.cu) on the layer's stream: route + plan, GEMM1 + SwiGLU, GEMM2 + combine; the
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
                weights.sharedW2Scale, d.y, d.sharedY, ws.topkWeight, c.hasSharedExpert() ? ws.sharedRowWeight : null, ws.out,
                d.gemm2Counters, d.plan, ws.numTokens);
        mark.after("small batch: GEMM2 + combine");
    }

    /** The real-row counts the BF16 GEMM2s get: {@code real}, or every row of a used block. */
    private RealRows bf16(RealRows real) { return bf16SkipPadding ? real : RealRows.ALL; }

    /**
     * The real-row counts the BF16 GEMM1s get. When GEMM1 skips and GEMM2 does not, GEMM2 reads SwiGLU rows GEMM1 left
     * stale (any bits, NaN included): a GEMM output row depends only on its own input row, and padding rows' outputs are
     * never read by combine, so no real row can see them.
     */
    private RealRows bf16Gemm1(RealRows real) { return bf16Gemm1SkipPadding ? real : RealRows.ALL; }

    /** The shared expert's input (bf16, or e4m3 per 128 with scales; padding rows zeroed) and GEMM1 + SwiGLU, on {@code s}. */
    private void enqueueSharedGemm1(LayerWorkspace ws, int cap, CudaStream s) {
        int h = config.hiddenSize(), si = config.sharedIntermediateSize();
        int blocks = (cap + MoeDispatch.BLOCK_M - 1) / MoeDispatch.BLOCK_M;
        RealRows real = RealRows.singleGroup(ws.numTokens);
        dispatch.padShared(s, ws.aShared, ws.aSharedScale, ws.sharedNumBlocks, ws.numTokens, h, format.bytes());
        if (format == Format.FP8) {
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
     * Times the layer on device-resident random inputs (benchmarks): {@code rotations} different inputs are generated
     * on the device and used in turn, so no run finds its input in L2; each run is timed with CUDA events around the
     * layer alone (graph replay), after {@code warmup} untimed runs.
     *
     * @return milliseconds of each timed run
     */
    public float[] timeLayer(int tokens, int warmup, int runs, int rotations, long seed) {
        lock.lock();
        try {
            return timeLayerLocked(tokens, warmup, runs, rotations, seed);
        } finally {
            lock.unlock();
        }
    }

    private float[] timeLayerLocked(int tokens, int warmup, int runs, int rotations, long seed) {
        requireOpen();
        if (tokens < 1 || tokens > maxTokens) throw new MoeEngineException("timeLayer: tokens must be in 1.." + maxTokens + ", got " + tokens);
        int h = config.hiddenSize();
        int bucket = TokenBuckets.bucket(tokens, maxTokens);
        LayerWorkspace ws = workspaceFor(bucket);
        long rowBytes = 4L * tokens * h;
        float[] ms = new float[runs];
        lastEnqueueNanos = new long[runs];
        try (DeviceBuffer inputs = DeviceBuffer.floats(ctx, "bench inputs", (long) rotations * tokens * h);
             CudaEvent start = new CudaEvent(ctx); CudaEvent end = new CudaEvent(ctx)) {
            DeviceWeights.fillNormalF32(module, stream, inputs, seed, 1f);
            ws.numTokens.memset32(tokens, stream);
            for (int i = 0; i < warmup + runs; i++) {
                ws.x.copyFrom(inputs, (i % rotations) * rowBytes, rowBytes, stream);
                start.record(stream);
                long t0 = System.nanoTime();
                runLayer(ws, bucket, usesDecodePath(tokens));
                long t1 = System.nanoTime();
                end.record(stream);
                if (i >= warmup) lastEnqueueNanos[i - warmup] = t1 - t0;
                end.synchronize();
                if (i >= warmup) ms[i - warmup] = end.elapsedMsSince(start);
            }
        }
        return ms;
    }

    private long[] lastEnqueueNanos = new long[0];

    /**
     * Median milliseconds of each stage of the layer (kernels launched one by one with an event after each stage, not
     * as a graph), over {@code runs} runs on device-resident random inputs after two warm-up runs.
     */
    public Map<String, Double> profileStages(int tokens, int runs, long seed) {
        lock.lock();
        try {
            return profileStagesLocked(tokens, runs, seed);
        } finally {
            lock.unlock();
        }
    }

    private Map<String, Double> profileStagesLocked(int tokens, int runs, long seed) {
        requireOpen();
        if (tokens < 1 || tokens > maxTokens || runs < 1) throw new MoeEngineException("profileStages: tokens 1.." + maxTokens + ", runs >= 1");
        int h = config.hiddenSize();
        int bucket = TokenBuckets.bucket(tokens, maxTokens);
        LayerWorkspace ws = workspaceFor(bucket);
        Map<String, float[]> times = new LinkedHashMap<>();
        List<CudaEvent> events = new ArrayList<>();
        List<String> names = new ArrayList<>();
        try (DeviceBuffer input = DeviceBuffer.floats(ctx, "profile input", (long) tokens * h)) {
            DeviceWeights.fillNormalF32(module, stream, input, seed, 1f);
            ws.numTokens.memset32(tokens, stream);
            for (int i = 0; i < runs + 2; i++) {
                ws.x.copyFrom(input, 0, 4L * tokens * h, stream);
                names.clear();
                CudaEvent start = event(events, 0);
                start.record(stream);
                int[] n = {1};
                enqueueKernels(ws, bucket, stage -> {
                    event(events, n[0]++).record(stream);
                    names.add(stage);
                }, false, usesDecodePath(tokens));
                event(events, n[0] - 1).synchronize();
                if (i < 2) continue;
                for (int j = 0; j < names.size(); j++) {
                    float ms = events.get(j + 1).elapsedMsSince(events.get(j));
                    times.computeIfAbsent(names.get(j), k -> new float[runs])[i - 2] = ms;
                }
            }
        } finally {
            for (CudaEvent e : events) e.close();
        }
        Map<String, Double> med = new LinkedHashMap<>();
        for (Map.Entry<String, float[]> e : times.entrySet()) {
            float[] v = e.getValue().clone();
            Arrays.sort(v);
            med.put(e.getKey(), (double) v[v.length / 2]);
        }
        return med;
    }

    private CudaEvent event(List<CudaEvent> events, int i) {
        while (events.size() <= i) events.add(new CudaEvent(ctx));
        return events.get(i);
    }

    /** Host nanoseconds spent queuing the layer (Java + driver: the graph launch) in each run of the last timeLayer. */
    public long[] lastEnqueueNanos() {
        lock.lock();
        try {
            return lastEnqueueNanos.clone();
        } finally {
            lock.unlock();
        }
    }

    /** Tokens routed to each expert in the last launch (read back from the device; for benchmarks and diagnostics). */
    public int[] lastExpertCounts() {
        lock.lock();
        try {
            requireOpen();
            if (workspace == null) return new int[config.numExperts()];
            stream.synchronize("expert counts");
            int[] counts = new int[config.numExperts()];
            workspace.expertCount.download(counts);
            return counts;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Waits for the calls in flight (their staging slots come back), then frees everything. A second close throws.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) throw new MoeEngineException("the GPU engine of layer " + layer + " was closed twice");
            closed = true; // no call queues work from now on
        } finally {
            lock.unlock();
        }
        RuntimeException failure = null;
        try { staging.close(); } catch (RuntimeException e) { failure = e; }
        lock.lock();
        try {
            try {
                ctx.makeCurrent();
                synchronizeStreams("closing the engine"); // work queued by stacks on this stream, too
                dropGraphs();
            } catch (RuntimeException e) {
                if (failure == null) failure = e; else failure.addSuppressed(e);
            }
            List<AutoCloseable> parts = new ArrayList<>(List.of(layerDone, inputConsumed));
            for (CudaEvent ev : new CudaEvent[] {sharedFork, sharedJoin, gateReady}) if (ev != null) parts.add(ev);
            for (CudaEvent[] es : new CudaEvent[][] {inReady, inFree, outReady, outFree}) if (es != null) parts.addAll(List.of(es));
            if (workspace != null) parts.add(workspace);
            if (decodeWs != null) parts.add(decodeWs);
            if (routerWeights != weights.router) parts.add(routerWeights);
            parts.add(weights);
            if (uploadStream != null) parts.add(uploadStream);
            if (downloadStream != null) parts.add(downloadStream);
            if (sharedStream != null) parts.add(sharedStream);
            parts.addAll(List.of(stream, module, ctx));
            for (AutoCloseable p : parts) {
                try {
                    p.close();
                } catch (Exception e) {
                    if (failure == null) failure = e instanceof RuntimeException r ? r : new MoeEngineException(e.getMessage(), e);
                    else failure.addSuppressed(e);
                }
            }
            workspace = null;
        } finally {
            lock.unlock();
        }
        if (failure != null) throw failure;
    }
}
