package dev.sparkmoe.spark;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.engine.Device;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngines;
import dev.sparkmoe.engine.Precision;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The engines of this JVM (one Spark executor, or the driver in local mode): each distinct (model, layer, device,
 * precision, threads) is loaded once, on first use, by the first task that needs it, while concurrent tasks wait for
 * that load; afterwards every task shares it ({@link MoeEngine#forward} is thread-safe). Weights are read by the
 * executor from the model path, never shipped from the driver. {@link #closeAll} (called by {@link MoePlugin} when
 * the executor stops) closes them.
 */
public final class EngineRegistry {
    private static final Logger LOG = LoggerFactory.getLogger(EngineRegistry.class);

    /** Identifies one resident engine. */
    public record EngineKey(String modelPath, int layer, Device device, int gpuOrdinal, Precision precision, int cpuThreads) {}

    private static final Map<EngineKey, CompletableFuture<MoeEngine>> ENGINES = new ConcurrentHashMap<>();
    private static final Map<String, Checkpoint> CHECKPOINTS = new ConcurrentHashMap<>();
    private static final AtomicInteger LOADS = new AtomicInteger();

    private EngineRegistry() {}

    /** The engines for {@code spec}'s layers on this JVM's placement, loading any not yet resident. */
    public static List<MoeEngine> acquire(MoeLayerSpec spec) {
        Placement where = ExecutorDevices.resolve(spec.device());
        List<MoeEngine> out = new ArrayList<>();
        for (int layer : spec.layers()) {
            out.add(acquire(new EngineKey(spec.modelPath(), layer, where.device(), where.gpuOrdinal(), spec.precision(),
                    where.device() == Device.CPU ? spec.cpuThreads() : 0)));
        }
        return out;
    }

    public static MoeEngine acquire(EngineKey key) {
        CompletableFuture<MoeEngine> mine = new CompletableFuture<>();
        CompletableFuture<MoeEngine> existing = ENGINES.putIfAbsent(key, mine);
        if (existing != null) {
            try {
                return existing.join();
            } catch (CompletionException e) {
                throw e.getCause() instanceof RuntimeException r ? r : new MoeSparkException(e.getCause().toString(), e.getCause());
            }
        }
        try {
            MoeEngine engine = load(key);
            mine.complete(engine);
            return engine;
        } catch (RuntimeException | Error e) {
            // A failed load is not cached: the next task retries it (and gets the same clear error if it persists).
            ENGINES.remove(key, mine);
            mine.completeExceptionally(e);
            throw e;
        }
    }

    private static MoeEngine load(EngineKey key) {
        long t0 = System.nanoTime();
        Checkpoint ckpt = CHECKPOINTS.computeIfAbsent(key.modelPath(), p -> Checkpoint.open(Path.of(p)));
        MoeEngine engine;
        try {
            engine = MoeEngines.open(ckpt, key.layer(), key.device(), key.precision(), key.cpuThreads(), Math.max(key.gpuOrdinal(), 0));
        } catch (RuntimeException e) {
            throw new MoeSparkException("cannot load MoE layer " + key.layer() + " of " + key.modelPath() + " on "
                    + key.device().name().toLowerCase() + ": " + e.getMessage(), e);
        }
        int n = LOADS.incrementAndGet();
        LOG.info("sparkmoe: loaded layer {} of {} on {} ({} precision) in {} ms (engine #{} of this JVM)", key.layer(),
                key.modelPath(), engine.deviceDescription(), key.precision().name().toLowerCase(),
                (System.nanoTime() - t0) / 1_000_000, n);
        return engine;
    }

    /** Engines loaded by this JVM since it started (closing does not reset it): tests check "once per JVM" with it. */
    public static int loadCount() { return LOADS.get(); }

    /** Number of engines resident now. */
    public static int residentCount() {
        return (int) ENGINES.values().stream().filter(f -> f.isDone() && !f.isCompletedExceptionally()).count();
    }

    /** Closes every resident engine and checkpoint of this JVM; the next acquire loads afresh. */
    public static synchronized void closeAll() {
        List<EngineKey> keys = new ArrayList<>(ENGINES.keySet());
        for (EngineKey k : keys) {
            CompletableFuture<MoeEngine> f = ENGINES.remove(k);
            if (f == null || !f.isDone() || f.isCompletedExceptionally()) continue;
            try {
                f.join().close();
            } catch (RuntimeException e) {
                LOG.warn("sparkmoe: closing the engine for {} failed: {}", k, e.toString());
            }
        }
        for (String p : new ArrayList<>(CHECKPOINTS.keySet())) {
            Checkpoint c = CHECKPOINTS.remove(p);
            if (c != null) c.close();
        }
        if (!keys.isEmpty()) LOG.info("sparkmoe: closed {} engine(s)", keys.size());
    }
}
