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
import dev.sparkmoe.kernels.MoeCombine;
import dev.sparkmoe.kernels.MoeDispatch;
import dev.sparkmoe.kernels.MoeRoute;
import dev.sparkmoe.kernels.WeightPacking.Format;
import dev.sparkmoe.model.MoeConfig;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The single-GPU MoE layer: route -> dispatch (padded expert-contiguous layout, FP8 quantization) -> grouped GEMM1 with
 * SwiGLU -> grouped GEMM2 with the routing weight -> deterministic combine, plus the shared expert, with no host
 * synchronization inside (expert counts stay on the device), so every token-count bucket runs as one CUDA graph.
 * Weights are uploaded once and stay resident until {@link #close()}. {@link #forward} is thread-safe: calls are
 * serialized on the engine's stream (one workspace).
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
    private final MoeDispatch dispatch;
    private final MoeCombine combine;
    private final GroupedGemm gemm;
    private final DeviceWeights weights;
    private final boolean useGraphs;
    private final int maxTokens;
    private final Map<Integer, CudaGraph> graphs = new HashMap<>();
    private LayerWorkspace workspace;
    private boolean closed;

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
        String router = GpuEngineSettings.ROUTER_KERNEL.fromSystemProperties();
        if (!router.equals("tc") && !router.equals("simt")) {
            throw new MoeEngineException(GpuEngineSettings.ROUTER_KERNEL.key() + " must be tc or simt, got '" + router + "'");
        }
        TokenBuckets.bucket(1, maxTokens); // validates the setting
        CudaContext cx = CudaContext.open(ordinal);
        CudaModule m = null;
        CudaStream s = null;
        DeviceWeights w = null;
        try {
            m = CudaModule.loadKernels(cx);
            s = new CudaStream(cx);
            w = source.load(cx, m, s);
        } catch (RuntimeException e) {
            closeAll(e, w, s, m, cx);
            throw e instanceof MoeEngineException ? e : new MoeEngineException("GPU engine setup failed: " + e.getMessage(), e);
        }
        this.ctx = cx;
        this.module = m;
        this.stream = s;
        this.weights = w;
        this.route = new MoeRoute(m, cx.multiprocessorCount(), router.equals("tc"));
        this.dispatch = new MoeDispatch(m);
        this.combine = new MoeCombine(m);
        this.gemm = new GroupedGemm(m, cx.multiprocessorCount(), GpuEngineSettings.REFERENCE_GEMM.fromSystemProperties());
    }

    private static void closeAll(RuntimeException primary, AutoCloseable... xs) {
        for (AutoCloseable x : xs) {
            if (x == null) continue;
            try { x.close(); } catch (Exception e) { primary.addSuppressed(e); }
        }
    }

    @Override public MoeConfig config() { return config; }
    @Override public int layer() { return layer; }
    @Override public Precision precision() { return precision; }

    @Override
    public String deviceDescription() {
        return "gpu " + ctx.ordinal() + ": " + ctx.name() + " (sm_" + ctx.computeCapability() + ", " + ctx.multiprocessorCount()
                + " SMs), " + (format == Format.FP8 ? "FP8 e4m3" : "BF16") + " grouped GEMMs" + (useGraphs ? ", CUDA graphs" : "");
    }

    /** Bytes of expert weights (and scales) resident on the device. */
    public long expertWeightBytes() { return weights.expertBytes(); }

    @Override
    public void forward(float[] hidden, int tokens, float[] out) {
        MoeEngine.checkInput(config, hidden, tokens, out);
        if (tokens == 0) return;
        synchronized (this) {
            requireOpen();
            int h = config.hiddenSize();
            for (int i = 0, n = TokenBuckets.launches(tokens, maxTokens); i < n; i++) {
                int t = TokenBuckets.launchTokens(tokens, maxTokens, i);
                runLaunch(hidden, i * maxTokens * h, t, out);
            }
        }
    }

    private void requireOpen() {
        if (closed) throw new MoeEngineException("the GPU engine of layer " + layer + " is closed");
    }

    private void runLaunch(float[] hidden, int offset, int tokens, float[] out) {
        int h = config.hiddenSize();
        int bucket = TokenBuckets.bucket(tokens, maxTokens);
        LayerWorkspace ws = workspaceFor(bucket);
        ctx.makeCurrent();
        FloatBuffer in = ws.hostIn.buffer().asFloatBuffer();
        in.put(hidden, offset, tokens * h);
        ws.hostCount.buffer().putInt(0, tokens);
        long bytes = 4L * tokens * h;
        ws.x.uploadAsync(ws.hostIn, bytes, 0, stream);
        ws.numTokens.uploadAsync(ws.hostCount, 4, 0, stream);
        runLayer(ws, bucket);
        ws.out.downloadAsync(ws.hostOut, bytes, stream);
        stream.synchronize("MoE layer " + layer + " (" + tokens + " tokens)");
        ws.hostOut.buffer().asFloatBuffer().get(out, offset, tokens * h);
    }

    /** Queues the whole layer for the token count already in the workspace: the bucket's graph, or the kernels. */
    private void runLayer(LayerWorkspace ws, int bucket) {
        if (!useGraphs) {
            enqueueLayer(ws, bucket);
            return;
        }
        CudaGraph g = graphs.get(bucket);
        if (g == null) {
            g = CudaGraph.capture(stream, "MoE layer " + layer + " bucket " + bucket, () -> enqueueLayer(ws, bucket));
            graphs.put(bucket, g);
        }
        g.launch(stream);
    }

    private LayerWorkspace workspaceFor(int bucket) {
        if (workspace == null || workspace.capacity() < bucket) {
            dropGraphs();
            if (workspace != null) workspace.close();
            workspace = null;
            workspace = new LayerWorkspace(ctx, config, format, weights.routerRows, bucket, ctx.multiprocessorCount());
        }
        return workspace;
    }

    private void dropGraphs() {
        for (CudaGraph g : graphs.values()) g.close();
        graphs.clear();
    }

    /** The layer's kernels, sized for {@code cap} tokens; the real count is read on the device. No host synchronization. */
    private void enqueueLayer(LayerWorkspace ws, int cap) {
        enqueueLayer(ws, cap, stage -> { });
    }

    /** Called between the stages of a layer (profiling records an event there; the normal path does nothing). */
    private interface StageMark { void after(String stage); }

    private void enqueueLayer(LayerWorkspace ws, int cap, StageMark mark) {
        MoeConfig c = config;
        int h = c.hiddenSize(), inter = c.expertIntermediateSize(), e = c.numExperts(), k = c.topK();
        int maxRowBlocks = MoeDispatch.maxRowBlocks(cap, k, e);
        boolean shared = c.hasSharedExpert();
        route.logits(stream, ws.x, weights.router, ws.logits, ws.routerPartial, ws.numTokens, cap, h, weights.routerRows);
        mark.after("router logits");
        route.topk(stream, c, ws.logits, weights.bias, ws.topkExpert, ws.topkWeight, shared ? ws.sharedRowWeight : null,
                shared ? ws.sharedNumBlocks : ws.numRowBlocks /* overwritten by the scan below */, ws.numTokens, cap, weights.routerRows);
        mark.after("top-k");
        dispatch.layout(stream, ws.topkExpert, ws.topkWeight, ws.chunkCounts, ws.chunkBase, ws.expertCount, ws.expertStart,
                ws.blockExpert, ws.numRowBlocks, ws.slotOfEntry, ws.rowWeight, ws.numTokens, cap, k, e, maxRowBlocks);
        mark.after("dispatch layout");
        dispatch.pad(stream, ws.expertCount, ws.expertStart, ws.a, ws.aScale, ws.rowWeight, shared ? ws.aShared : null,
                shared ? ws.aSharedScale : null, ws.numTokens, h, e, format.bytes());
        int sharedBlocks = (cap + MoeDispatch.BLOCK_M - 1) / MoeDispatch.BLOCK_M;
        if (format == Format.FP8) {
            dispatch.rowsFp8(stream, ws.x, ws.slotOfEntry, ws.a, ws.aScale, shared ? ws.aShared : null,
                    shared ? ws.aSharedScale : null, ws.numTokens, cap, h, k);
            mark.after("pad + scatter (fp8 quantize)");
            gemm.gemm1Fp8(stream, ws.a, ws.aScale, weights.w1, weights.w1Scale, ws.hmid, ws.hmidScale, ws.blockExpert,
                    ws.numRowBlocks, maxRowBlocks, h, inter, RealRows.ofExperts(ws.expertCount, ws.expertStart));
            mark.after("GEMM1 routed");
            gemm.gemm2Fp8(stream, ws.hmid, ws.hmidScale, weights.w2, weights.w2Scale, ws.y, ws.rowWeight, ws.blockExpert,
                    ws.numRowBlocks, maxRowBlocks, inter, h, RealRows.ofExperts(ws.expertCount, ws.expertStart));
            mark.after("GEMM2 routed");
            if (shared) {
                int si = c.sharedIntermediateSize();
                gemm.gemm1Fp8(stream, ws.aShared, ws.aSharedScale, weights.sharedW1, weights.sharedW1Scale, ws.hShared,
                        ws.hSharedScale, ws.sharedBlockExpert, ws.sharedNumBlocks, sharedBlocks, h, si, RealRows.singleGroup(ws.numTokens));
                gemm.gemm2Fp8(stream, ws.hShared, ws.hSharedScale, weights.sharedW2, weights.sharedW2Scale, ws.yShared,
                        ws.sharedRowWeight, ws.sharedBlockExpert, ws.sharedNumBlocks, sharedBlocks, si, h, RealRows.singleGroup(ws.numTokens));
                mark.after("shared expert GEMMs");
            }
        } else {
            dispatch.rowsBf16(stream, ws.x, ws.slotOfEntry, ws.a, shared ? ws.aShared : null, ws.numTokens, cap, h, k);
            mark.after("pad + scatter (bf16)");
            gemm.gemm1Bf16(stream, ws.a, weights.w1, ws.hmid, ws.blockExpert, ws.numRowBlocks, maxRowBlocks, h, inter,
                    RealRows.ofExperts(ws.expertCount, ws.expertStart));
            mark.after("GEMM1 routed");
            gemm.gemm2Bf16(stream, ws.hmid, weights.w2, ws.y, ws.rowWeight, ws.blockExpert, ws.numRowBlocks, maxRowBlocks, inter, h,
                    RealRows.ofExperts(ws.expertCount, ws.expertStart));
            mark.after("GEMM2 routed");
            if (shared) {
                int si = c.sharedIntermediateSize();
                gemm.gemm1Bf16(stream, ws.aShared, weights.sharedW1, ws.hShared, ws.sharedBlockExpert, ws.sharedNumBlocks,
                        sharedBlocks, h, si, RealRows.singleGroup(ws.numTokens));
                gemm.gemm2Bf16(stream, ws.hShared, weights.sharedW2, ws.yShared, ws.sharedRowWeight, ws.sharedBlockExpert,
                        ws.sharedNumBlocks, sharedBlocks, si, h, RealRows.singleGroup(ws.numTokens));
                mark.after("shared expert GEMMs");
            }
        }
        combine.combine(stream, ws.y, shared ? ws.yShared : null, ws.slotOfEntry, ws.out, ws.numTokens, cap, h, k);
        mark.after("combine");
    }

    /**
     * Times the layer on device-resident random inputs (benchmarks): {@code rotations} different inputs are generated
     * on the device and used in turn, so no run finds its input in L2; each run is timed with CUDA events around the
     * layer alone (graph replay), after {@code warmup} untimed runs.
     *
     * @return milliseconds of each timed run
     */
    public synchronized float[] timeLayer(int tokens, int warmup, int runs, int rotations, long seed) {
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
            ws.hostCount.buffer().putInt(0, tokens);
            ws.numTokens.uploadAsync(ws.hostCount, 4, 0, stream);
            for (int i = 0; i < warmup + runs; i++) {
                ws.x.copyFrom(inputs, (i % rotations) * rowBytes, rowBytes, stream);
                start.record(stream);
                long t0 = System.nanoTime();
                runLayer(ws, bucket);
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
    public synchronized Map<String, Double> profileStages(int tokens, int runs, long seed) {
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
            ws.hostCount.buffer().putInt(0, tokens);
            ws.numTokens.uploadAsync(ws.hostCount, 4, 0, stream);
            for (int i = 0; i < runs + 2; i++) {
                ws.x.copyFrom(input, 0, 4L * tokens * h, stream);
                names.clear();
                CudaEvent start = event(events, 0);
                start.record(stream);
                int[] n = {1};
                enqueueLayer(ws, bucket, stage -> {
                    event(events, n[0]++).record(stream);
                    names.add(stage);
                });
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
    public synchronized long[] lastEnqueueNanos() { return lastEnqueueNanos.clone(); }

    /** Tokens routed to each expert in the last launch (read back from the device; for benchmarks and diagnostics). */
    public synchronized int[] lastExpertCounts() {
        requireOpen();
        if (workspace == null) return new int[config.numExperts()];
        stream.synchronize("expert counts");
        int[] counts = new int[config.numExperts()];
        workspace.expertCount.download(counts);
        return counts;
    }

    @Override
    public synchronized void close() {
        if (closed) throw new MoeEngineException("the GPU engine of layer " + layer + " was closed twice");
        closed = true;
        RuntimeException failure = null;
        try { ctx.makeCurrent(); dropGraphs(); } catch (RuntimeException e) { failure = e; }
        AutoCloseable[] parts = {workspace, weights, stream, module, ctx};
        for (AutoCloseable p : parts) {
            if (p == null) continue;
            try {
                p.close();
            } catch (Exception e) {
                if (failure == null) failure = e instanceof RuntimeException r ? r : new MoeEngineException(e.getMessage(), e);
                else failure.addSuppressed(e);
            }
        }
        workspace = null;
        if (failure != null) throw failure;
    }
}
