package dev.sparkmoe.spark;

import java.util.Locale;
import java.util.concurrent.atomic.LongAdder;

/**
 * Where the time of this JVM's micro-batch tasks went, summed over tasks since the last {@link #reset}: decoding rows
 * into batches, waiting for forward passes, the forward passes themselves, and encoding results. In local mode the
 * tasks run in the driver, so a job can print its own breakdown; on a cluster each executor has its own counters.
 */
public final class MicroBatchStats {
    private MicroBatchStats() {}

    static final LongAdder BATCHES = new LongAdder();
    static final LongAdder TOKENS = new LongAdder();
    static final LongAdder DECODE_NANOS = new LongAdder();
    static final LongAdder WAIT_NANOS = new LongAdder();
    static final LongAdder FORWARD_NANOS = new LongAdder();
    static final LongAdder ENCODE_NANOS = new LongAdder();

    public static void reset() {
        for (LongAdder a : new LongAdder[] {BATCHES, TOKENS, DECODE_NANOS, WAIT_NANOS, FORWARD_NANOS, ENCODE_NANOS}) a.reset();
    }

    public static long batches() { return BATCHES.sum(); }

    /** One line, e.g. "37 batches, 300000 tokens; task threads: decode 1.2 s, wait 10.3 s, encode 0.8 s; forward calls 40.1 s". */
    public static String summary() {
        return String.format(Locale.ROOT, "%d batches, %d tokens; summed over tasks: decode %.1f s, waiting for the engine %.1f s, "
                        + "encode %.1f s; forward calls %.1f s (queueing on a shared engine included)", BATCHES.sum(), TOKENS.sum(),
                DECODE_NANOS.sum() / 1e9, WAIT_NANOS.sum() / 1e9, ENCODE_NANOS.sum() / 1e9, FORWARD_NANOS.sum() / 1e9);
    }
}
