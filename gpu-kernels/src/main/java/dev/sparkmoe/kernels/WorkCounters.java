package dev.sparkmoe.kernels;

import dev.sparkmoe.cuda.CudaContext;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;

import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The work-counter pairs of the grouped GEMMs that claim their units at run time (grouped_gemm_schedule.cuh,
 * Tile::kDynamic): two zeroed uint32 per stream - the next unit to claim and the CTAs done. Launches on one stream
 * run one after another and each leaves its pair zeroed (its last CTA resets it), so one pair per stream serves every
 * launch on it, CUDA graph replays included; launches on different streams may overlap and get different pairs.
 * Owns the pairs' device buffers; closing twice throws.
 */
public final class WorkCounters implements AutoCloseable {
    private final Map<CudaStream, DeviceBuffer> pairs = new IdentityHashMap<>();
    private boolean closed;

    /**
     * One pair for each of {@code streams} (null entries are skipped: e.g. an absent side stream), zeroed by a memset
     * on its own stream, so the zero lands before any launch on that stream (the layer's streams do not synchronize
     * with the legacy stream a synchronous copy would use).
     */
    public WorkCounters(CudaContext ctx, String owner, CudaStream... streams) {
        try {
            for (CudaStream s : streams) {
                if (s == null || pairs.containsKey(s)) continue;
                DeviceBuffer b = DeviceBuffer.ints(ctx, owner + " GEMM work counters " + pairs.size(), 2);
                pairs.put(s, b);
                b.memset32(0, s);
            }
        } catch (RuntimeException e) {
            throw closePairs(e);
        }
    }

    /** The pair of launches on {@code s}. */
    DeviceBuffer of(CudaStream s) {
        if (closed) throw new IllegalStateException("GEMM work counters already closed");
        DeviceBuffer b = pairs.get(s);
        if (b == null) throw new IllegalArgumentException("no GEMM work counter pair for stream " + s + ": only the streams given at construction may launch dynamic-unit GEMMs");
        return b;
    }

    @Override
    public void close() {
        if (closed) throw new IllegalStateException("GEMM work counters closed twice");
        closed = true;
        RuntimeException failure = closePairs(null);
        if (failure != null) throw failure;
    }

    /** Closes every pair; returns {@code failure}, or the first close failure when it is null, the others suppressed in it. */
    private RuntimeException closePairs(RuntimeException failure) {
        for (DeviceBuffer b : pairs.values()) {
            try { b.close(); } catch (RuntimeException e) { if (failure == null) failure = e; else failure.addSuppressed(e); }
        }
        pairs.clear();
        return failure;
    }
}
