package dev.sparkmoe.gpu;

import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.cuda.Cuda;
import dev.sparkmoe.cuda.CudaContext;
import dev.sparkmoe.cuda.CudaEvent;
import dev.sparkmoe.cuda.CudaException;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.kernels.MoeDispatch;
import dev.sparkmoe.kernels.MoeRoute;
import dev.sparkmoe.kernels.WeightPacking.Format;
import dev.sparkmoe.model.MoeConfig;

import java.util.ArrayList;
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
 *
 * <p>The engine holds the context, module, stream, weights, workspace and staging, and queues the calls; the parts:
 * {@link ResolvedEngineSettings} (the settings, read once), {@link LayerKernels} (the layer's kernel sequence),
 * {@link LayerGraphs} (graph per bucket, or direct launches), {@link OverlappedCopies} (the copy streams of
 * {@link ForwardMode#OVERLAPPED}) and {@link LayerProfiler} (benchmark timings).
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
    private final ResolvedEngineSettings settings;
    private final CudaContext ctx;
    private final CudaModule module;
    private final CudaStream stream;
    private final DeviceWeights weights;
    private final LayerKernels kernels;
    private final LayerGraphs graphs;
    private final LayerProfiler profiler;
    private final int maxTokens;
    private final ForwardMode mode;
    private final StagingPool<StagingSlot> staging;
    /** OVERLAPPED only (else null): copy streams and the events of the double-buffered device staging. */
    private final OverlappedCopies copies;
    /** Stack ordering: recorded after this engine's layer / after this engine consumed the previous layer's buffers. */
    private final CudaEvent layerDone, inputConsumed;
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
        ResolvedEngineSettings s = ResolvedEngineSettings.resolve(c, p, ordinal);
        this.settings = s;
        this.maxTokens = s.maxTokens();
        this.mode = s.forwardMode();
        CudaContext cx = CudaContext.open(ordinal);
        List<AutoCloseable> made = new ArrayList<>(); // closed in reverse on failure
        made.add(cx);
        try {
            this.module = Closeables.add(made, CudaModule.loadKernels(cx));
            // with a shared branch the layer's own kernels get the highest priority, the branch the lowest: the CTA
            // scheduler then gives the branch only what the critical path leaves idle
            this.stream = Closeables.add(made, new CudaStream(cx, s.sharedBranch() ? CudaStream.Priority.HIGHEST : CudaStream.Priority.DEFAULT));
            this.weights = Closeables.add(made, source.load(cx, module, stream));
            this.kernels = Closeables.add(made, new LayerKernels(cx, module, stream, c, layer, format, s, weights));
            this.copies = mode == ForwardMode.OVERLAPPED ? Closeables.add(made, new OverlappedCopies(cx)) : null;
            this.layerDone = Closeables.add(made, CudaEvent.forOrdering(cx, "layer " + layer + " done"));
            this.inputConsumed = Closeables.add(made, CudaEvent.forOrdering(cx, "layer " + layer + " input consumed"));
        } catch (RuntimeException e) {
            Closeables.closeAfter(made, e);
            throw e instanceof MoeEngineException ? e : new MoeEngineException("GPU engine setup failed: " + e.getMessage(), e);
        }
        this.ctx = cx;
        this.graphs = new LayerGraphs(kernels, stream, layer, s.graphs());
        this.profiler = new LayerProfiler(cx, module, stream, c.hiddenSize(), kernels, graphs);
        this.staging = new StagingPool<>("staging of the GPU engine of layer " + layer, s.stagingSlots(), s.stagingBytes(),
                new StagingPool.Allocator<>() {
                    @Override public StagingSlot allocate(long bytes) { return new StagingSlot(cx, bytes); }
                    @Override public long capacity(StagingSlot slot) { return slot.capacity(); }
                });
    }

    @Override public MoeConfig config() { return config; }
    @Override public int layer() { return layer; }
    @Override public Precision precision() { return precision; }

    @Override
    public String deviceDescription() {
        ResolvedEngineSettings s = settings;
        return "gpu " + ctx.ordinal() + ": " + ctx.name() + " (sm_" + ctx.computeCapability() + ", " + ctx.multiprocessorCount()
                + " SMs), " + (format == Format.FP8 ? "FP8 e4m3" : "BF16") + " grouped GEMMs"
                + (format == Format.FP8 && s.fp8PromotionInterval() != 128 ? " (promoted every " + s.fp8PromotionInterval() + " of K)" : "")
                + (format == Format.BF16 && s.bf16SkipPadding() ? " (padding halves skipped)" : "")
                + (format == Format.BF16 && s.bf16Gemm1SkipPadding() && !s.bf16SkipPadding() ? " (GEMM1 padding halves skipped)" : "")
                + ", router logits " + kernels.routerKernel().name().toLowerCase(java.util.Locale.ROOT)
                + (s.yBf16() ? ", expert outputs bf16" : "")
                + (s.gatherRows() ? ", GEMM1 gathers its rows" : "")
                + switch (s.gemmDynamicUnits()) {
                    case OFF -> "";
                    case GEMM1 -> ", GEMM1's work units claimed at run time";
                    case ALL -> ", all GEMMs' work units claimed at run time";
                }
                + (s.scatterKernel() != MoeDispatch.ScatterKernel.PREFETCH ? ", scatter " + s.scatterKernel().name().toLowerCase(java.util.Locale.ROOT) : "")
                + (kernels.sharedStream() != null ? ", shared expert on a side stream" : "")
                + (kernels.decodeMaxTokens() > 0 ? ", small-batch path up to " + kernels.decodeMaxTokens() + " tokens" : "")
                + (s.graphs() ? ", CUDA graphs" : "");
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

    /** Whether a call of {@code callTokens} tokens runs the small-batch path ({@link LayerKernels#usesDecodePath}). */
    boolean usesDecodePath(int callTokens) { return kernels.usesDecodePath(callTokens); }

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
            DecodeWorkspace d = kernels.decodeWorkspace();
            if (d == null) throw new MoeEngineException("the small-batch path is off in this engine");
            ctx.makeCurrent();
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
            copies.upload(ws, slot, bytes, stream);
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
        if (residual) kernels.add(prevWs.out, prevWs.x, ws.x, n);
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
        kernels.add(ws.out, ws.x, ws.out, (long) tokens * config.hiddenSize());
    }

    /**
     * Queues the layer for the token count already queued into the workspace; {@code small}: the small-batch path
     * ({@link #usesDecodePath} of the whole call). Lock held.
     */
    void enqueueLayer(LayerWorkspace ws, int tokens, boolean small) {
        graphs.launch(ws, TokenBuckets.bucket(tokens, maxTokens), small);
    }

    /** Queues the copy of out into the slot's output and records the slot's event after it. Lock held. */
    void enqueueOutput(LayerWorkspace ws, StagingSlot slot, int tokens) {
        long bytes = 4L * tokens * config.hiddenSize();
        ctx.makeCurrent();
        if (mode == ForwardMode.OVERLAPPED) {
            copies.download(ws, slot, bytes, stream);
        } else {
            ws.out.downloadAsync(slot.out, bytes, stream);
            slot.done.record(stream);
        }
    }

    StagingPool<StagingSlot> staging() { return staging; }

    int maxTokens() { return maxTokens; }

    int ordinal() { return ctx.ordinal(); }

    ForwardMode forwardMode() { return mode; }

    private LayerWorkspace workspaceFor(int bucket) {
        if (workspace == null || workspace.capacity() < bucket) {
            // queued work (of this engine, or of a stack reading this workspace: it made our stream wait) may still use it
            synchronizeStreams("growing the workspace");
            graphs.clear();
            if (workspace != null) workspace.close();
            workspace = null;
            workspace = new LayerWorkspace(ctx, config, format, weights.routerRows, bucket, ctx.multiprocessorCount(),
                    mode == ForwardMode.OVERLAPPED, settings.yBf16() ? 2 : 4, settings.gatherRows());
        }
        return workspace;
    }

    private void synchronizeStreams(String what) {
        stream.synchronize(what);
        if (kernels.sharedStream() != null) kernels.sharedStream().synchronize(what);
        if (copies != null) copies.synchronize(what);
    }

    /**
     * Times the layer on device-resident random inputs (benchmarks): {@code rotations} different inputs are generated
     * on the device and used in turn, so no run finds its input in L2; each run is timed with CUDA events around the
     * layer alone (graph replay), after {@code warmup} untimed runs. {@code queueMicros} 0: an isolated call (the events
     * also hold the host's submission of the graph); more: the stream is kept busy that long before the start event,
     * so the events hold the layer's device time alone.
     *
     * @return milliseconds of each timed run
     */
    public float[] timeLayer(int tokens, int warmup, int runs, int rotations, long seed, int queueMicros) {
        lock.lock();
        try {
            requireOpen();
            if (tokens < 1 || tokens > maxTokens) throw new MoeEngineException("timeLayer: tokens must be in 1.." + maxTokens + ", got " + tokens);
            int bucket = TokenBuckets.bucket(tokens, maxTokens);
            if (queueMicros < 0) throw new MoeEngineException("timeLayer: queueMicros must be >= 0, got " + queueMicros);
            return profiler.timeLayer(workspaceFor(bucket), bucket, tokens, warmup, runs, rotations, seed, queueMicros);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Median milliseconds of each stage of the layer (kernels launched one by one with an event after each stage, not
     * as a graph), over {@code runs} runs on device-resident random inputs after two warm-up runs.
     */
    public Map<String, Double> profileStages(int tokens, int runs, long seed) {
        lock.lock();
        try {
            requireOpen();
            if (tokens < 1 || tokens > maxTokens || runs < 1) throw new MoeEngineException("profileStages: tokens 1.." + maxTokens + ", runs >= 1");
            int bucket = TokenBuckets.bucket(tokens, maxTokens);
            return profiler.profileStages(workspaceFor(bucket), bucket, tokens, runs, seed);
        } finally {
            lock.unlock();
        }
    }

    /** Host nanoseconds spent queuing the layer (Java + driver: the graph launch) in each run of the last timeLayer. */
    public long[] lastEnqueueNanos() {
        lock.lock();
        try {
            return profiler.lastEnqueueNanos();
        } finally {
            lock.unlock();
        }
    }

    /** Timed runs of the last queued timeLayer whose host queuing outlasted the busy kernel (see LayerProfiler). */
    public int lastQueueOverruns() {
        lock.lock();
        try {
            return profiler.lastQueueOverruns();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Diagnostics: how many tokens of the last call, which had {@code tokens} tokens, the certified router
     * ({@code sparkmoe.gpu.routerKernel} cert or certwg) could not certify and routed again from fp64 logits; -1 when such a call
     * does not route through it (another router kernel, or the small-batch path). Waits for the engine's stream.
     */
    public int lastRouterFallbackTokens(int tokens) {
        lock.lock();
        try {
            requireOpen();
            if (workspace == null || kernels.usesDecodePath(tokens) || !kernels.routerKernel().certified()) {
                return -1;
            }
            stream.synchronize("router fallback count");
            int[] n = new int[1];
            workspace.routerFallbackCount.download(n);
            return n[0];
        } finally {
            lock.unlock();
        }
    }

    /**
     * Tests: the router logits [tokens, router rows] of the last grouped-path call of {@code tokens} tokens as the route
     * left them (the certified router: fast logits, fp64 ones for the tokens it listed). Waits for the stream.
     */
    float[] lastRouterLogits(int tokens) {
        lock.lock();
        try {
            requireOpen();
            if (workspace == null || kernels.usesDecodePath(tokens)) throw new IllegalStateException("no grouped-path call of " + tokens + " tokens");
            stream.synchronize("router logits");
            float[] logits = new float[Math.multiplyExact(tokens, weights.routerRows)];
            workspace.logits.download(logits);  // the buffer's first rows
            return logits;
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
     * Each part closes what it owns; the order: the ordering events, the copy streams, the workspace, the kernel
     * sequence's parts, the weights, then stream, module and context.
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
            } catch (RuntimeException e) {
                if (failure == null) failure = e; else failure.addSuppressed(e);
            }
            // the graphs first, and even when the synchronization failed (each part is closed on its own)
            List<AutoCloseable> parts = new ArrayList<>(List.of(graphs, layerDone, inputConsumed));
            if (copies != null) parts.add(copies);
            if (workspace != null) parts.add(workspace);
            parts.addAll(List.of(kernels, weights, stream, module, ctx));
            failure = Closeables.closeEach(parts, failure);
            workspace = null;
        } finally {
            lock.unlock();
        }
        if (failure != null) throw failure;
    }
}
