package dev.sparkmoe.examples;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.cpu.CpuMoeEngine;
import dev.sparkmoe.engine.Device;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngines;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.spark.EngineWarmup;
import dev.sparkmoe.spark.HiddenEncoding;
import dev.sparkmoe.spark.MicroBatchStats;
import dev.sparkmoe.spark.MoeLayerSpec;
import dev.sparkmoe.spark.MoeLayerTransformer;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * The batch inference job: reads Parquet of id + hidden state, applies one or more MoE layers (optionally with the
 * residual), writes Parquet, and prints rows/s and tokens/s; then the engine's own throughput on the same data
 * (outside Spark) so the Spark overhead can be read off, and optionally a check of output rows against the CPU
 * engine run in the driver.
 */
@Command(name = "batch-inference", mixinStandardHelpOptions = true,
        description = "Applies MoE layers to a Parquet dataset of hidden states and reports throughput.")
public final class BatchInference implements Callable<Integer> {
    @Mixin SparkOptions spark = new SparkOptions();

    @Option(names = "--model", required = true, description = "checkpoint directory, readable by every executor")
    String model;

    @Option(names = "--layers", required = true, split = ",", description = "MoE layer indices, applied in order, e.g. 0,1")
    int[] layers;

    @Option(names = "--input", required = true, description = "input Parquet (id + hidden)")
    String input;

    @Option(names = "--output", required = true, description = "output Parquet (replaced if present)")
    String output;

    @Option(names = "--input-col", defaultValue = "hidden", description = "hidden-state column (default ${DEFAULT-VALUE})")
    String inputCol;

    @Option(names = "--output-col", defaultValue = "moe_out", description = "result column (default ${DEFAULT-VALUE})")
    String outputCol;

    @Option(names = "--input-encoding", defaultValue = "auto",
            description = "auto (the column's sparkmoe.encoding metadata, else array<float> -> array, binary -> fp32), array, fp32, bf16 (default ${DEFAULT-VALUE})")
    String inputEncoding;

    @Option(names = "--output-encoding", defaultValue = "same", description = "same, array, fp32, bf16 (default ${DEFAULT-VALUE})")
    String outputEncoding;

    @Option(names = "--residual", description = "x + moe(x) per layer")
    boolean residual;

    @Option(names = "--batch-size", defaultValue = "1024", description = "tokens per micro-batch (default ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu, gpu (default ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--precision", defaultValue = "native", description = "native or fp8 (default ${DEFAULT-VALUE})")
    String precision;

    @Option(names = "--cpu-threads", defaultValue = "0", description = "CPU engine threads per executor, 0 = all (default ${DEFAULT-VALUE})")
    int cpuThreads;

    @Option(names = "--partitions", description = "repartition the input to this many partitions first")
    Integer partitions;

    @Option(names = "--keep-input", description = "keep the input hidden-state column in the output")
    boolean keepInput;

    @Option(names = "--warmup-rows", defaultValue = "2000",
            description = "untimed pass over the first N rows (no-op sink) to warm Spark's code generation and readers (0 = none; default ${DEFAULT-VALUE})")
    int warmupRows;

    @Option(names = "--baseline-tokens", defaultValue = "65536",
            description = "engine-only throughput on the first N tokens of the input, in the driver (0 = skip; default ${DEFAULT-VALUE})")
    long baselineTokens;

    @Option(names = "--baseline-threads", description = "threads for the engine-only run (default: Spark's task slots)")
    Integer baselineThreads;

    @Option(names = "--verify-rows", defaultValue = "0", description = "compare this many output rows with the CPU engine in the driver (default ${DEFAULT-VALUE})")
    int verifyRows;

    @Option(names = "--verify-tolerance", description = "max relative error per row for --verify-rows (default: 1e-3 where the "
            + "driver runs the layers on the CPU, " + GPU_LAYER_TOLERANCE + " per layer where it runs them on a GPU)")
    Double verifyTolerance;

    @Override public Integer call() throws Exception {
        MoeLayerSpec spec = new MoeLayerSpec(model, layers, Device.parse(device), Precision.parse(precision), residual, cpuThreads);
        try (SparkSession s = spark.session("sparkmoe-batch-inference")) {
            System.out.println("sparkmoe batch inference: " + spec + ", batch " + batchSize + " tokens, master " + s.sparkContext().master());
            long tLoad = System.nanoTime();
            for (String line : EngineWarmup.preload(s, spec)) System.out.println("  " + line);
            System.out.printf(Locale.ROOT, "  engines resident on the executors in %.1f s%n", (System.nanoTime() - tLoad) / 1e9);

            Dataset<Row> in = s.read().parquet(input);
            if (partitions != null) in = in.repartition(partitions);
            MoeLayerTransformer t = new MoeLayerTransformer().setModelPath(model).setLayers(layers).setResidual(residual)
                    .setBatchSize(batchSize).setDevice(device).setPrecision(precision).setInputCol(inputCol)
                    .setOutputCol(outputCol).setInputEncoding(inputEncoding).setOutputEncoding(outputEncoding).setCpuThreads(cpuThreads)
                    .setDropInputCol(!keepInput && verifyRows == 0);
            HiddenEncoding inEnc = t.inputEncodingFor(in.schema());
            HiddenEncoding outEnc = t.outputEncodingFor(in.schema());
            if (warmupRows > 0) t.transform(in.limit(warmupRows)).write().format("noop").mode("overwrite").save();
            Dataset<Row> result = t.transform(in);

            MicroBatchStats.reset();
            long t0 = System.nanoTime();
            result.write().mode("overwrite").parquet(output);
            double sec = (System.nanoTime() - t0) / 1e9;
            if (s.sparkContext().isLocal()) System.out.println("micro-batches (local mode): " + MicroBatchStats.summary());

            Dataset<Row> written = s.read().parquet(output);
            int hidden = Checkpoint.open(Path.of(spec.modelPath())).config().hiddenSize();
            long rows = written.count();
            long tokens = countTokens(written, outputCol, outEnc, hidden);
            double rps = rows / sec, tps = tokens / sec;
            System.out.printf(Locale.ROOT, "rows %d, tokens %d, %.2f s (read + MoE + write)%n", rows, tokens, sec);
            System.out.printf(Locale.ROOT, "rows/s %.1f, tokens/s %.1f%n", rps, tps);

            double engineTps = Double.NaN;
            if (baselineTokens > 0) {
                List<float[]> sample = sample(s.read().parquet(input), inputCol, inEnc, hidden, baselineTokens);
                int threads = baselineThreads != null ? baselineThreads : s.sparkContext().defaultParallelism();
                EngineBaseline.Result r = EngineBaseline.measure(spec, sample, batchSize, threads);
                engineTps = r.tokensPerSecond();
                System.out.printf(Locale.ROOT, "engine only (driver, same data: %d tokens in %d batches, %d threads): tokens/s %.1f%n",
                        r.tokens(), r.batches(), r.threads(), engineTps);
                System.out.printf(Locale.ROOT, "Spark end-to-end / engine only: %.1f%% (Spark overhead %.1f%%)%n",
                        100 * tps / engineTps, 100 * (1 - tps / engineTps));
            }
            if (verifyRows > 0) verify(written, spec, inEnc, outEnc, hidden);
            System.out.printf(Locale.ROOT, "RESULT rows=%d tokens=%d seconds=%.3f rows_per_s=%.1f tokens_per_s=%.1f engine_tokens_per_s=%.1f%n",
                    rows, tokens, sec, rps, tps, engineTps);
        }
        return 0;
    }

    private static long countTokens(Dataset<Row> df, String col, HiddenEncoding enc, int hidden) {
        String expr = enc == HiddenEncoding.ARRAY ? "size(`" + col + "`)" : "length(`" + col + "`) div " + (enc == HiddenEncoding.FP32 ? 4 : 2);
        Row r = df.selectExpr("coalesce(sum(" + expr + "), 0) AS n").first();
        return r.getLong(0) / hidden;
    }

    /** Whole rows from the start of the input until {@code maxTokens} tokens are collected. */
    private static List<float[]> sample(Dataset<Row> in, String col, HiddenEncoding enc, int hidden, long maxTokens) {
        List<float[]> rows = new ArrayList<>();
        long tokens = 0;
        var it = in.select(col).toLocalIterator();
        while (it.hasNext() && tokens < maxTokens) {
            float[] v = enc.decode(it.next().get(0)).clone();
            rows.add(v);
            tokens += v.length / hidden;
        }
        return rows;
    }

    /** Default per-row tolerance of a layer's GPU output against the CPU engine (bf16 activations, FP8 tensor-core sums). */
    static final double GPU_LAYER_TOLERANCE = 2e-2;
    /** The Spark output against the driver's own chain of the same engines on the same tokens. */
    static final double SAME_ENGINE_TOLERANCE = 1e-3;

    /**
     * The first rows of the output against the CPU engine, one layer in memory at a time. Where the driver runs the
     * layers on the CPU (as executors without a GPU do), the CPU chain over the rows is the check. Where it runs them on
     * a GPU, a chain of CPU layers stops being a reference after the first layer: GPU arithmetic moves a layer's output
     * by ~1e-3, and the next router may then pick another expert for a token whose best keys nearly tie - a
     * discontinuity of the model, not an error (the README's 2-layer job showed 0.39 on one row that way). So each layer
     * is checked on its own: the driver's GPU engine and the CPU engine get the same input (the GPU chain so far) and
     * their outputs must agree per row; then the Spark output must equal the driver's GPU chain (same engines, same
     * tokens, all rows in one call as Spark's micro-batches are).
     */
    private void verify(Dataset<Row> written, MoeLayerSpec spec, HiddenEncoding inEnc, HiddenEncoding outEnc, int hidden) {
        List<Row> rows = written.select(inputCol, outputCol).limit(verifyRows).collectAsList();
        List<float[]> chain = new ArrayList<>();
        for (Row r : rows) chain.add(inEnc.decode(r.get(0)));
        double worstLayer = 0;
        boolean onGpu = false;
        try (Checkpoint ckpt = Checkpoint.open(Path.of(spec.modelPath()))) {
            for (int l : layers) {
                MoeLayerWeights w = MoeLayerWeights.load(ckpt, l); // read once for both engines
                try (MoeEngine dev = MoeEngines.open(w, spec.device(), spec.precision(), 0, 0)) {
                    onGpu = !(dev instanceof CpuMoeEngine);
                    List<float[]> next = applyLayer(dev, chain, hidden);
                    if (onGpu) {
                        try (MoeEngine cpu = MoeEngines.open(w, Device.CPU, spec.precision(), 0, 0)) {
                            List<float[]> ref = applyLayer(cpu, chain, hidden);
                            for (int i = 0; i < next.size(); i++) worstLayer = Math.max(worstLayer, relativeError(next.get(i), ref.get(i)));
                        }
                    }
                    chain = next;
                }
            }
        }
        double worst = 0;
        for (int i = 0; i < rows.size(); i++) {
            float[] x = chain.get(i);
            if (outEnc == HiddenEncoding.BF16) {
                for (int k = 0; k < x.length; k++) x[k] = dev.sparkmoe.checkpoint.Floats.bf16ToFloat(dev.sparkmoe.checkpoint.Floats.floatToBf16(x[k]));
            }
            worst = Math.max(worst, relativeError(outEnc.decode(rows.get(i).get(1)), x));
        }
        String precision = spec.precision().name().toLowerCase(Locale.ROOT);
        if (!onGpu) {
            double tol = verifyTolerance != null ? verifyTolerance : 1e-3;
            System.out.printf(Locale.ROOT, "verify: %d rows against the CPU engine (%s precision): max relative error %.3e (tolerance %.1e)%n",
                    rows.size(), precision, worst, tol);
            if (!(worst <= tol)) throw new IllegalStateException("output differs from the CPU engine: relative error " + worst + " > " + tol);
            return;
        }
        double tol = verifyTolerance != null ? verifyTolerance : GPU_LAYER_TOLERANCE;
        System.out.printf(Locale.ROOT, "verify: %d rows, each of %d layer(s) on the GPU against the CPU engine on the same input (%s precision): "
                + "max relative error %.3e (tolerance %.1e); Spark output against the driver's GPU chain: %.3e (tolerance %.0e)%n",
                rows.size(), layers.length, precision, worstLayer, tol, worst, SAME_ENGINE_TOLERANCE);
        if (!(worstLayer <= tol)) throw new IllegalStateException("a GPU layer differs from the CPU engine: relative error " + worstLayer + " > " + tol);
        if (!(worst <= SAME_ENGINE_TOLERANCE)) {
            throw new IllegalStateException("the Spark output differs from the same engines run on the driver: relative error " + worst + " > " + SAME_ENGINE_TOLERANCE);
        }
    }

    /**
     * Tokens of the driver's verification call at least: above the GPU engine's small-batch limit (16, at most 32), so
     * the driver's chain takes the grouped path as Spark's full micro-batches do (a token's result does not depend on
     * the other tokens of its call, but the two paths sum in different orders).
     */
    static final int DRIVER_MIN_TOKENS = 64;

    /**
     * {@code engine} on every row (one call over all rows' tokens, like a micro-batch, repeated up to
     * {@link #DRIVER_MIN_TOKENS}), plus the input when residual.
     */
    private List<float[]> applyLayer(MoeEngine engine, List<float[]> in, int hidden) {
        int total = 0;
        for (float[] x : in) total += x.length;
        if (total == 0) return new ArrayList<>(in); // rows without tokens stay empty
        int copies = Math.max(1, (DRIVER_MIN_TOKENS * hidden + total - 1) / total);
        float[] all = new float[total * copies];
        int at = 0;
        for (int c = 0; c < copies; c++) for (float[] x : in) { System.arraycopy(x, 0, all, at, x.length); at += x.length; }
        float[] y = engine.forward(all, all.length / hidden);
        List<float[]> out = new ArrayList<>(in.size());
        at = 0;
        for (float[] x : in) {
            float[] r = Arrays.copyOfRange(y, at, at + x.length);
            if (residual) for (int k = 0; k < r.length; k++) r[k] += x[k];
            out.add(r);
            at += x.length;
        }
        return out;
    }

    static double relativeError(float[] out, float[] ref) {
        if (out.length != ref.length) return Double.POSITIVE_INFINITY;
        double num = 0, den = 0;
        for (int i = 0; i < out.length; i++) {
            if (!Float.isFinite(out[i])) return Double.POSITIVE_INFINITY;
            double d = (double) out[i] - ref[i];
            num += d * d;
            den += (double) ref[i] * ref[i];
        }
        return Math.sqrt(num / den);
    }

    public static void main(String[] args) { System.exit(new CommandLine(new BatchInference()).execute(args)); }
}
