package dev.sparkmoe.cli;

import dev.sparkmoe.engine.MoeStack;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.IntStream;

/**
 * Engine-only throughput as concurrent tasks see it: {@code threads} caller threads each call
 * {@link MoeStack#forward} on fp32 host batches of {@code batchTokens} (inputs shared read-only, one output array per
 * thread) for a fixed time after one warm-up call each; tokens/s = completed calls x batch tokens / wall time.
 */
final class EngineThroughput {
    private EngineThroughput() {}

    record Result(int threads, int batchTokens, long calls, double seconds) {
        double tokensPerSecond() { return calls * (double) batchTokens / seconds; }
    }

    /** {@code count} arrays of {@code n} normal(0, 1) floats, filled in parallel (different per seed). */
    static float[][] randomInputs(int count, int n, long seed) {
        float[][] xs = new float[count][n];
        int chunk = 1 << 20;
        for (int i = 0; i < count; i++) {
            float[] x = xs[i];
            long s = seed * 31 + i;
            IntStream.range(0, (n + chunk - 1) / chunk).parallel().forEach(c -> {
                SplittableRandom r = new SplittableRandom(s * 1_000_003L + c);
                for (int j = c * chunk, end = Math.min(n, j + chunk); j < end; j++) x[j] = (float) nextGaussian(r);
            });
        }
        return xs;
    }

    private static double nextGaussian(SplittableRandom r) {
        double u1 = 1.0 - r.nextDouble(), u2 = r.nextDouble();
        return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }

    static Result measure(MoeStack stack, float[][] inputs, int batchTokens, int threads, double seconds) throws Exception {
        int n = Math.multiplyExact(batchTokens, stack.hiddenSize());
        for (float[] x : inputs) if (x.length != n) throw new CliException("throughput inputs must hold " + n + " floats");
        CyclicBarrier ready = new CyclicBarrier(threads + 1);
        long[] deadline = new long[1];
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Long>> fs = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                fs.add(pool.submit(() -> {
                    float[] out = new float[n];
                    stack.forward(inputs[id % inputs.length], batchTokens, out); // warm-up: staging, workspace, graph
                    ready.await();
                    ready.await(); // the clock starts between the two
                    long calls = 0;
                    for (int i = id; System.nanoTime() < deadline[0]; i++, calls++) {
                        stack.forward(inputs[i % inputs.length], batchTokens, out);
                    }
                    return calls;
                }));
            }
            ready.await();
            long t0 = System.nanoTime();
            deadline[0] = t0 + (long) (seconds * 1e9);
            ready.await();
            long calls = 0;
            for (Future<Long> f : fs) calls += f.get();
            return new Result(threads, batchTokens, calls, (System.nanoTime() - t0) / 1e9);
        } finally {
            pool.shutdownNow();
        }
    }
}
