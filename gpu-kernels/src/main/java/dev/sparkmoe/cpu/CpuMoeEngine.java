package dev.sparkmoe.cpu;

import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.checkpoint.MoeLayerWeights.ExpertWeights;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.model.MoeConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The CPU MoE engine: the arithmetic of {@link MoeLayerReference}, computed as per-expert GEMMs through OpenBLAS
 * over the tokens routed to each expert, on a pool of worker threads.
 *
 * <p>One forward: router logits ({@link Router#logits}, bit-identical to the reference, split over token ranges)
 * → routing → the tokens of each expert gathered into rows → {@code [n, H]·[H, 2I]} (gate and up stacked) →
 * SwiGLU → {@code [n, I]·[I, H]} → each row times its routing weight into its (token, choice) slot → per token, the
 * slots summed in selection order, plus the shared expert. Workers take (expert, row range) items from a queue, and
 * each item writes only its own slots, so the result is bitwise the same whatever the thread count or scheduling.
 * OpenBLAS runs single-threaded inside each call ({@link Blas}): the parallelism is across items.
 *
 * <p>Weights are converted to fp32 ({@link WeightValues}) once at construction into native memory while they fit
 * {@link CpuEngineSettings#RESIDENT_WEIGHT_BYTES}; experts beyond the budget are converted again on each forward.
 * {@link #forward} is thread-safe; {@link #close} frees the native memory (a second close throws).
 */
public final class CpuMoeEngine implements MoeEngine {
    private static final Logger LOG = LoggerFactory.getLogger(CpuMoeEngine.class);
    private static final AtomicInteger IDS = new AtomicInteger();
    private static final Cleaner CLEANER = Cleaner.create();
    /** Rows per GEMM: large enough for OpenBLAS to run near peak, small enough to balance the workers. */
    static final int ROWS_PER_GEMM = 256;

    private final int id = IDS.incrementAndGet();
    private final MoeConfig config;
    private final int layer;
    private final Precision precision;
    private final int threads;
    private final int tokensPerPass;
    private final float[] router;
    private final float[] selectionBias;
    private final float[] sharedGate;
    /** Routed experts 0..E-1, then the shared expert (if any) at index E. */
    private final ExpertSlot[] slots;
    private final int maxIntermediate;
    private final long residentBytes;
    private final int residentExperts;
    private final Resources resources;
    private final Cleaner.Cleanable cleanable;
    private final ReentrantReadWriteLock lifecycle = new ReentrantReadWriteLock();
    private boolean closed;
    /** Each worker's matrix buffer for conversions (large arrays allocated once, not per matrix). */
    private final ThreadLocal<float[]> conversionBuffer = ThreadLocal.withInitial(() -> new float[0]);

    /** One expert's weights; {@code resident} holds [gate; up] as [2I, H] followed by down [H, I], or is null. */
    private record ExpertSlot(ExpertWeights source, int intermediate, NativeFloats resident) {}

    /** What must be released: reachable from the cleaner without the engine, so a forgotten close is logged and freed. */
    private static final class Resources implements Runnable {
        final int id;
        final List<NativeFloats> buffers = new ArrayList<>();
        final ExecutorService pool;
        volatile boolean closedExplicitly;

        Resources(int id, ExecutorService pool) { this.id = id; this.pool = pool; }

        @Override
        public void run() {
            if (!closedExplicitly) LOG.warn("CpuMoeEngine #{} was never closed; freeing its {} native weight buffers", id, buffers.size());
            for (NativeFloats b : buffers) b.close();
            buffers.clear();
            pool.shutdownNow();
        }
    }

    /** @param threads worker threads; 0 = all available processors */
    public CpuMoeEngine(MoeLayerWeights w, Precision p, int threads) {
        this(w, p, threads, CpuEngineSettings.RESIDENT_WEIGHT_BYTES.fromSystemProperties());
    }

    /** @param residentBudgetBytes native memory for weights kept in fp32 between calls (the setting's value otherwise) */
    public CpuMoeEngine(MoeLayerWeights w, Precision p, int threads, long residentBudgetBytes) {
        this(w, p, threads, residentBudgetBytes, CpuEngineSettings.COMBINE_BUFFER_BYTES.fromSystemProperties());
    }

    /** @param combineBufferBytes heap for one pass' per-(token, choice) outputs (the setting's value otherwise) */
    CpuMoeEngine(MoeLayerWeights w, Precision p, int threads, long residentBudgetBytes, long combineBufferBytes) {
        if (w == null || p == null) throw new MoeEngineException("CPU engine needs weights and a precision");
        if (threads < 0) throw new MoeEngineException("CPU engine threads must be >= 0 (0 = all processors), got " + threads);
        if (residentBudgetBytes < 0) throw new MoeEngineException("resident weight budget must be >= 0, got " + residentBudgetBytes);
        Blas.init();
        this.config = w.config();
        this.layer = w.layer();
        this.precision = p;
        this.threads = threads == 0 ? Runtime.getRuntime().availableProcessors() : threads;
        long perToken = 4L * config.topK() * config.hiddenSize();
        this.tokensPerPass = (int) Math.max(1, Math.min(Integer.MAX_VALUE / perToken, combineBufferBytes / perToken));
        this.router = w.router().toFloats();
        this.selectionBias = w.selectionBias();
        this.sharedGate = w.sharedGate() == null ? null : w.sharedGate().toFloats();

        AtomicInteger workerIds = new AtomicInteger();
        String threadPrefix = "sparkmoe-cpu-" + id + "-"; // a local: the pool must not reach the engine (see Resources)
        ExecutorService pool = Executors.newFixedThreadPool(this.threads, r -> {
            Thread t = new Thread(r, threadPrefix + workerIds.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        this.resources = new Resources(id, pool);
        this.cleanable = CLEANER.register(this, resources);

        List<ExpertWeights> sources = new ArrayList<>(w.experts());
        if (w.shared() != null) sources.add(w.shared());
        boolean[] keep = residencyPlan(sources, w.shared() != null, residentBudgetBytes);
        long used = 0;
        int kept = 0;
        for (int x = 0; x < keep.length; x++) {
            if (keep[x]) {
                used += 4L * fp32Length(sources.get(x));
                kept++;
            }
        }
        this.residentBytes = used;
        this.residentExperts = kept;
        ExpertSlot[] s = new ExpertSlot[sources.size()];
        int maxInter = 0;
        try {
            for (int x = 0; x < s.length; x++) {
                ExpertWeights src = sources.get(x);
                maxInter = Math.max(maxInter, src.intermediate());
                NativeFloats buffer = null;
                if (keep[x]) {
                    buffer = new NativeFloats(fp32Length(src));
                    resources.buffers.add(buffer);
                }
                s[x] = new ExpertSlot(src, src.intermediate(), buffer);
            }
            this.slots = s;
            this.maxIntermediate = maxInter;
            long t0 = System.nanoTime();
            runParallel(s.length, x -> { if (s[x].resident() != null) convert(s[x], s[x].resident()); });
            LOG.debug("CpuMoeEngine #{}: converted {} resident experts in {} ms", id, kept, (System.nanoTime() - t0) / 1_000_000);
        } catch (RuntimeException ex) {
            resources.closedExplicitly = true;
            cleanable.clean();
            throw ex;
        }
        LOG.debug("CpuMoeEngine #{}: layer {}, {}, {} threads, {}/{} experts resident ({} MiB)", id, layer, p, this.threads,
                kept, s.length, used >> 20);
    }

    /** Which experts stay resident: the shared expert (used by every token) first, then routed experts by index, while they fit. */
    private static boolean[] residencyPlan(List<ExpertWeights> experts, boolean lastIsShared, long budgetBytes) {
        int n = experts.size();
        List<Integer> order = new ArrayList<>();
        if (lastIsShared) order.add(n - 1);
        for (int x = 0; x < (lastIsShared ? n - 1 : n); x++) order.add(x);
        boolean[] keep = new boolean[n];
        long used = 0;
        for (int x : order) {
            long bytes = 4L * fp32Length(experts.get(x));
            if (used + bytes <= budgetBytes) {
                keep[x] = true;
                used += bytes;
            }
        }
        return keep;
    }

    private static long fp32Length(ExpertWeights x) {
        return 3L * x.intermediate() * x.gate().cols();
    }

    /** Writes an expert's fp32 weights ([gate; up] then down) into {@code dst}, through one reused matrix buffer per thread. */
    private void convert(ExpertSlot slot, NativeFloats dst) {
        ExpertWeights src = slot.source();
        int n = slot.intermediate() * config.hiddenSize();
        float[] v = conversionBuffer.get();
        if (v.length < n) conversionBuffer.set(v = new float[n]);
        WeightValues.into(src.gate(), precision, v, 0);
        dst.write(0, v, 0, n);
        WeightValues.into(src.up(), precision, v, 0);
        dst.write(n, v, 0, n);
        WeightValues.into(src.down(), precision, v, 0);
        dst.write(2L * n, v, 0, n);
    }

    @Override
    public void forward(float[] hidden, int tokens, float[] out) {
        ReentrantReadWriteLock.ReadLock lock = lifecycle.readLock();
        lock.lock();
        try {
            if (closed) throw new MoeEngineException("CPU engine for layer " + layer + " is closed");
            MoeEngine.checkInput(config, hidden, tokens, out);
            if (tokens == 0) return;
            forwardChecked(hidden, tokens, out);
        } finally {
            lock.unlock();
        }
    }

    private void forwardChecked(float[] hidden, int tokens, float[] out) {
        int h = config.hiddenSize(), e = config.numExperts();
        long t0 = System.nanoTime();
        float[] logits = new float[Math.multiplyExact(tokens, e)];
        float[] gateLogits = sharedGate == null ? null : new float[tokens];
        float[] expertInput = precision == Precision.FP8 ? new float[Math.multiplyExact(tokens, h)] : hidden;
        // Ranges aligned to the router's blocks, so the logits do not depend on the thread count.
        int rangeLen = Router.LOGIT_BLOCK * Math.max(1, ceilDiv(tokens, 4 * threads * Router.LOGIT_BLOCK));
        runParallel(ceilDiv(tokens, rangeLen), r -> {
            int from = r * rangeLen, to = Math.min(tokens, from + rangeLen);
            Router.logits(hidden, from, to, h, router, e, logits);
            if (gateLogits != null) Router.logits(hidden, from, to, h, sharedGate, 1, gateLogits);
            if (precision == Precision.FP8) {
                System.arraycopy(hidden, from * h, expertInput, from * h, (to - from) * h);
                Fp8Quantizer.roundTripActivations(expertInput, from * h, to - from, h);
            }
        });
        long t1 = System.nanoTime();
        RoutingResult routing = Router.route(config, logits, selectionBias, tokens);
        long t2 = System.nanoTime();
        for (int from = 0; from < tokens; from += tokensPerPass) {
            new Pass(routing, expertInput, gateLogits, out, from, Math.min(tokens, from + tokensPerPass)).run();
        }
        if (LOG.isDebugEnabled()) {
            LOG.debug("CpuMoeEngine #{}: {} tokens: logits{} {} ms, routing {} ms, experts and combine {} ms", id, tokens,
                    precision == Precision.FP8 ? " and input quantization" : "", (t1 - t0) / 1_000_000, (t2 - t1) / 1_000_000,
                    (System.nanoTime() - t2) / 1_000_000);
        }
    }

    /** Tokens [from, to) of one forward: expert GEMMs into per-(token, choice) slots, then the ordered sum. */
    private final class Pass {
        final RoutingResult routing;
        final float[] input;
        final float[] gateLogits;
        final float[] out;
        final int from, to, k, h;
        /** Rows routed to each expert: pass-local slot numbers (token - from) * k + choice, ascending. */
        final int[][] rowsOf;
        /** w_j · expert_j(x_t) for slot (t - from) * k + j, [slots, H]. */
        final float[] slotOutputs;

        Pass(RoutingResult routing, float[] input, float[] gateLogits, float[] out, int from, int to) {
            this.routing = routing;
            this.input = input;
            this.gateLogits = gateLogits;
            this.out = out;
            this.from = from;
            this.to = to;
            this.k = config.topK();
            this.h = config.hiddenSize();
            int e = config.numExperts();
            int[] count = new int[e];
            for (int s = from * k; s < to * k; s++) count[routing.experts()[s]]++;
            rowsOf = new int[e][];
            for (int x = 0; x < e; x++) rowsOf[x] = new int[count[x]];
            int[] fill = new int[e];
            for (int s = from * k; s < to * k; s++) {
                int x = routing.experts()[s];
                rowsOf[x][fill[x]++] = s - from * k;
            }
            slotOutputs = new float[Math.multiplyExact((to - from) * k, h)];
        }

        /** (expert, first row, end row); the shared expert's rows are the pass' tokens. */
        record Item(int expert, int row0, int row1) {}

        void run() {
            List<Item> items = new ArrayList<>();
            for (int x = 0; x < slots.length; x++) {
                int rows = x < rowsOf.length ? rowsOf[x].length : to - from;
                if (rows == 0) continue;
                // A resident expert's rows split into GEMM-sized items for balance; a converted one stays whole so
                // it is converted once per pass.
                int step = slots[x].resident() != null ? ROWS_PER_GEMM : rows;
                for (int r = 0; r < rows; r += step) items.add(new Item(x, r, Math.min(rows, r + step)));
            }
            // Biggest first (scheduling only; results do not depend on it).
            items.sort(Comparator.comparingLong((Item i) -> -(long) (i.row1() - i.row0()) * slots[i.expert()].intermediate()
                    * (slots[i.expert()].resident() == null ? 4 : 1)));
            long t0 = System.nanoTime();
            runParallelWithScratch(items.size(), (n, scratch) -> compute(items.get(n), scratch));
            long t1 = System.nanoTime();
            int tokensHere = to - from;
            int rangeLen = Math.max(1, ceilDiv(tokensHere, 4 * threads));
            boolean addShared = slots.length > config.numExperts();
            runParallel(ceilDiv(tokensHere, rangeLen), r -> {
                float[] acc = new float[h];
                for (int t = from + r * rangeLen, end = Math.min(to, t + rangeLen); t < end; t++) {
                    java.util.Arrays.fill(acc, 0f);
                    int base = (t - from) * k * h;
                    for (int j = 0; j < k; j++) {
                        for (int c = 0, s = base + j * h; c < h; c++) acc[c] += slotOutputs[s + c];
                    }
                    int o = t * h;
                    if (addShared) for (int c = 0; c < h; c++) out[o + c] = acc[c] + out[o + c];
                    else System.arraycopy(acc, 0, out, o, h);
                }
            });
            LOG.debug("CpuMoeEngine #{}: pass [{}, {}): {} expert items {} ms, combine {} ms", id, from, to, items.size(),
                    (t1 - t0) / 1_000_000, (System.nanoTime() - t1) / 1_000_000);
        }

        private int tokenOfRow(int expert, int row) {
            return expert < rowsOf.length ? from + rowsOf[expert][row] / k : from + row;
        }

        void compute(Item item, Scratch s) {
            ExpertSlot slot = slots[item.expert()];
            int inter = slot.intermediate();
            NativeFloats w = slot.resident();
            if (w == null) {
                w = s.weights(fp32Length(slot.source()));
                convert(slot, w);
            }
            long gateUpLen = (long) inter * h;
            boolean routed = item.expert() < rowsOf.length;
            for (int r0 = item.row0(); r0 < item.row1(); r0 += ROWS_PER_GEMM) {
                int m = Math.min(ROWS_PER_GEMM, item.row1() - r0);
                for (int i = 0; i < m; i++) s.x.write((long) i * h, input, tokenOfRow(item.expert(), r0 + i) * h, h);
                Blas.matmulTransposedB(s.x.at(0), w.at(0), s.y.at(0), m, 2 * inter, h);
                s.y.read(0, s.gateUp, 0, m * 2 * inter);
                for (int i = 0; i < m; i++) {
                    int g = i * 2 * inter, a = i * inter;
                    for (int c = 0; c < inter; c++) s.act[a + c] = Swiglu.apply(s.gateUp[g + c], s.gateUp[g + inter + c]);
                }
                if (precision == Precision.FP8) Fp8Quantizer.roundTripActivations(s.act, 0, m, inter);
                s.a.write(0, s.act, 0, m * inter);
                Blas.matmulTransposedB(s.a.at(0), w.at(2 * gateUpLen), s.o.at(0), m, h, inter);
                s.o.read(0, s.rows, 0, m * h);
                for (int i = 0; i < m; i++) {
                    int row = r0 + i, src = i * h;
                    if (routed) {
                        int slotNo = rowsOf[item.expert()][row];
                        float weight = routing.weights()[from * k + slotNo];
                        for (int c = 0, d = slotNo * h; c < h; c++) slotOutputs[d + c] = weight * s.rows[src + c];
                    } else {
                        int t = from + row;
                        float weight = gateLogits == null ? 1f : Router.sigmoid(gateLogits[t]);
                        for (int c = 0, d = t * h; c < h; c++) out[d + c] = weight * s.rows[src + c];
                    }
                }
            }
        }
    }

    /** One worker's buffers for one forward: native GEMM operands, heap copies, and lazily a converted expert. */
    private final class Scratch implements AutoCloseable {
        final NativeFloats x, y, a, o;
        final float[] gateUp, act, rows;
        NativeFloats converted;

        Scratch() {
            int h = config.hiddenSize(), r = ROWS_PER_GEMM, inter = maxIntermediate;
            x = new NativeFloats((long) r * h);
            y = new NativeFloats((long) r * 2 * inter);
            a = new NativeFloats((long) r * inter);
            o = new NativeFloats((long) r * h);
            gateUp = new float[r * 2 * inter];
            act = new float[r * inter];
            rows = new float[r * h];
        }

        NativeFloats weights(long length) {
            if (converted == null || converted.length() < length) {
                if (converted != null) converted.close();
                converted = null;
                converted = new NativeFloats(length);
            }
            return converted;
        }

        @Override
        public void close() {
            x.close();
            y.close();
            a.close();
            o.close();
            if (converted != null) converted.close();
        }
    }

    private interface ItemWork { void run(int item, Scratch scratch); }

    private void runParallelWithScratch(int items, ItemWork work) {
        AtomicInteger next = new AtomicInteger();
        runWorkers(Math.min(threads, items), () -> {
            if (next.get() >= items) return;
            try (Scratch s = new Scratch()) {
                for (int i; (i = next.getAndIncrement()) < items; ) work.run(i, s);
            }
        });
    }

    private void runParallel(int tasks, java.util.function.IntConsumer body) {
        AtomicInteger next = new AtomicInteger();
        runWorkers(Math.min(threads, tasks), () -> {
            for (int i; (i = next.getAndIncrement()) < tasks; ) body.accept(i);
        });
    }

    /** Runs {@code workers} copies of {@code worker} on the pool and waits for all; the first failure is rethrown. */
    private void runWorkers(int workers, Runnable worker) {
        if (workers <= 0) return;
        List<Future<?>> futures = new ArrayList<>(workers);
        for (int i = 0; i < workers; i++) futures.add(resources.pool.submit(worker));
        RuntimeException failure = null;
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (ExecutionException ex) {
                Throwable c = ex.getCause();
                if (failure == null) {
                    failure = c instanceof MoeEngineException m ? m
                            : new MoeEngineException("CPU engine worker failed on layer " + layer + ": " + c, c);
                }
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                for (Future<?> g : futures) g.cancel(true);
                throw new MoeEngineException("interrupted while running layer " + layer, ex);
            }
        }
        if (failure != null) throw failure;
    }

    private static int ceilDiv(int a, int b) { return (a + b - 1) / b; }

    @Override public MoeConfig config() { return config; }
    @Override public int layer() { return layer; }
    @Override public Precision precision() { return precision; }

    /** Expert weights kept in fp32 between calls, in bytes. */
    public long residentWeightBytes() { return residentBytes; }

    /** Experts (routed and shared) kept resident; the others are converted on every forward. */
    public int residentExperts() { return residentExperts; }

    @Override
    public String deviceDescription() {
        return "cpu (" + threads + " threads, OpenBLAS sgemm; " + residentExperts + "/" + slots.length
                + " experts resident in fp32, " + (residentBytes >> 20) + " MiB)";
    }

    @Override
    public void close() {
        ReentrantReadWriteLock.WriteLock lock = lifecycle.writeLock();
        lock.lock();
        try {
            if (closed) throw new MoeEngineException("CPU engine for layer " + layer + " closed twice");
            closed = true;
            resources.closedExplicitly = true;
            cleanable.clean();
        } finally {
            lock.unlock();
        }
    }
}
