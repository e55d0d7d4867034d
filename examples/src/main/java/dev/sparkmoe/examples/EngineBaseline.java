package dev.sparkmoe.examples;

import dev.sparkmoe.spark.LayerStack;
import dev.sparkmoe.spark.MoeLayerSpec;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The engine's own throughput on given rows, outside Spark: the rows are packed into the same micro-batches the
 * transformer would form (whole rows until at least {@code batchTokens} tokens), then run by {@code threads}
 * threads sharing one engine, as concurrent Spark tasks do. Only the forward passes are timed.
 */
public final class EngineBaseline {
    private EngineBaseline() {}

    public record Result(long tokens, int batches, int threads, double seconds) {
        public double tokensPerSecond() { return tokens / seconds; }
    }

    public static List<float[]> pack(List<float[]> rows, int hidden, int batchTokens) {
        List<float[]> batches = new ArrayList<>();
        List<float[]> cur = new ArrayList<>();
        int tokens = 0;
        for (float[] r : rows) {
            cur.add(r);
            tokens += r.length / hidden;
            if (tokens >= batchTokens) {
                batches.add(concat(cur));
                cur.clear();
                tokens = 0;
            }
        }
        if (!cur.isEmpty()) batches.add(concat(cur));
        return batches;
    }

    private static float[] concat(List<float[]> rows) {
        int n = 0;
        for (float[] r : rows) n += r.length;
        float[] out = new float[n];
        int off = 0;
        for (float[] r : rows) {
            System.arraycopy(r, 0, out, off, r.length);
            off += r.length;
        }
        return out;
    }

    public static Result measure(MoeLayerSpec spec, List<float[]> rows, int batchTokens, int threads) throws Exception {
        LayerStack stack = LayerStack.open(spec);
        int h = stack.hiddenSize();
        List<float[]> batches = pack(rows, h, batchTokens);
        long tokens = 0;
        for (float[] b : batches) tokens += b.length / h;
        float[] warm = batches.get(0);
        stack.forward(warm, warm.length / h, new float[warm.length]); // first call: lazy initialisation, not timed
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            long t0 = System.nanoTime();
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int first = t;
                done.add(pool.submit(() -> {
                    float[] out = new float[0]; // one output buffer per thread, as each Spark task reuses its own
                    for (int i = first; i < batches.size(); i += threads) {
                        float[] b = batches.get(i);
                        if (out.length < b.length) out = new float[b.length];
                        stack.forward(b, b.length / h, out);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) f.get();
            return new Result(tokens, batches.size(), threads, (System.nanoTime() - t0) / 1e9);
        } finally {
            pool.shutdownNow();
        }
    }
}
