package dev.sparkmoe.cpu;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.testing.TensorChecks;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The measurement harness of docs/cpu-engine.md (not a unit test: run by hand).
 * <pre>
 *   CpuEngineBench generate DIR [PRESET [DTYPE]]    writes a 1-layer checkpoint (default qwen3-30b-a3b, bf16)
 *   CpuEngineBench run DIR TOKENS THREADS PRECISION [FORWARDS [OUT_DIR]]
 * </pre>
 * {@code run} times loading (open, map, convert to fp32) and each forward (default 1, as one {@code moe run} does),
 * checks repeated forwards are bitwise equal, prints the whole process time since JVM start, and with OUT_DIR writes input.f32 / output.f32 (raw little-endian) for scripts/bench/numpy_moe_layer.py.
 */
public final class CpuEngineBench {
    public static void main(String[] args) throws IOException {
        switch (args[0]) {
            case "generate" -> {
                String preset = args.length > 2 ? args[2] : "qwen3-30b-a3b";
                DType dtype = args.length > 3 ? DType.fromUserName(args[3]) : DType.BF16;
                long t = System.nanoTime();
                SyntheticCheckpoint.write(SyntheticCheckpoint.preset(preset, 1, dtype), dtype, 42, Path.of(args[1]),
                        SyntheticCheckpoint.DEFAULT_SHARD_BYTES);
                System.out.printf("generated %s in %.1f s%n", preset, (System.nanoTime() - t) / 1e9);
            }
            case "run" -> run(Path.of(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]), Precision.parse(args[4]),
                    args.length > 5 ? Integer.parseInt(args[5]) : 1, args.length > 6 ? Path.of(args[6]) : null);
            default -> throw new IllegalArgumentException("usage: generate DIR [PRESET [DTYPE]] | run DIR TOKENS THREADS PRECISION [FORWARDS [OUT_DIR]]");
        }
    }

    private static void run(Path model, int tokens, int threads, Precision p, int forwards, Path outDir) throws IOException {
        long t0 = System.nanoTime(), c0 = cpuNanos();
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            int layer = ckpt.config().moeLayerList().get(0);
            MoeLayerWeights w = MoeLayerWeights.load(ckpt, layer);
            System.out.printf("open and map checkpoint %.2f s%n", (System.nanoTime() - t0) / 1e9);
            try (CpuMoeEngine engine = new CpuMoeEngine(w, p, threads)) {
                long t1 = System.nanoTime(), c1 = cpuNanos();
                int h = w.config().hiddenSize();
                float[] x = TensorChecks.randomNormal(7, tokens * h, 1.0);
                float[] y = null;
                for (int i = 1; i <= forwards; i++) {
                    long t2 = System.nanoTime(), c2 = cpuNanos();
                    float[] yi = engine.forward(x, tokens);
                    long t3 = System.nanoTime(), c3 = cpuNanos();
                    if (y != null && !java.util.Arrays.equals(y, yi)) throw new IllegalStateException("forwards differ");
                    y = yi;
                    System.out.printf("forward %d: %d tokens in %.2f s (%.0f tokens/s), process CPU %.2f s%n", i, tokens,
                            (t3 - t2) / 1e9, tokens / ((t3 - t2) / 1e9), (c3 - c2) / 1e9);
                }
                System.out.println(engine.deviceDescription());
                System.out.printf("load %.2f s (process CPU %.2f s)%n", (t1 - t0) / 1e9, (c1 - c0) / 1e9);
                if (outDir != null) {
                    Files.createDirectories(outDir);
                    write(outDir.resolve("input.f32"), x);
                    write(outDir.resolve("output.f32"), y);
                }
            }
        }
        long sinceStart = System.currentTimeMillis() - ManagementFactory.getRuntimeMXBean().getStartTime();
        System.out.printf("process time since JVM start %.2f s%n", sinceStart / 1e3);
    }

    /** CPU time of the whole process (all threads), to tell a busy shared machine from a slow engine. */
    private static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    private static void write(Path f, float[] v) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        Files.write(f, b.array());
    }
}
