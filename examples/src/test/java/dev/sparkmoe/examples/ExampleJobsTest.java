package dev.sparkmoe.examples;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.engine.Device;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngines;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.spark.HiddenEncoding;
import dev.sparkmoe.testing.TensorChecks;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The example jobs end to end in local mode, as scripts/run-example.sh runs them (one JVM here): generate a model
 * and a dataset, run the batch job with two layers and the residual, check ids and values against the CPU engine,
 * and run a small throughput sweep that writes its CSV and PNG.
 */
class ExampleJobsTest {
    @TempDir static Path tmp;
    static Path model;
    static final String[] LOCAL = {"--master", "local[2]", "--conf", "spark.kryo.registrationRequired=true",
            "--conf", "spark.sql.shuffle.partitions=4"};

    @BeforeAll static void model() {
        model = tmp.resolve("model");
        assertEquals(0, new CommandLine(new GenerateModel()).execute("--preset", "tiny-qwen3", "--layers", "2", "--dtype", "bf16",
                "--seed", Long.toString(TensorChecks.freshSeed()), "--output", model.toString()));
    }

    @AfterAll static void stop() {
        SparkSession.getActiveSession().foreach(s -> { s.stop(); return null; });
    }

    private static String run(Object job, String... args) {
        String[] all = new String[LOCAL.length + args.length];
        System.arraycopy(args, 0, all, 0, args.length);
        System.arraycopy(LOCAL, 0, all, args.length, LOCAL.length);
        PrintStream old = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true));
        int rc;
        try {
            rc = new CommandLine(job).execute(all);
        } finally {
            System.setOut(old);
        }
        String out = buf.toString();
        System.out.print(out);
        assertEquals(0, rc, "exit code of " + job.getClass().getSimpleName() + "; output:\n" + out);
        return out;
    }

    @Test void batchJobWritesEveryRowOnceMatchingTheEngine() {
        long seed = TensorChecks.freshSeed();
        String input = tmp.resolve("input").toString(), output = tmp.resolve("output").toString();
        run(new GenerateInput(), "--model", model.toString(), "--rows", "300", "--tokens-per-row", "1-3", "--encoding", "fp32",
                "--seed", Long.toString(seed), "--partitions", "3", "--output", input);
        String out = run(new BatchInference(), "--model", model.toString(), "--layers", "1,0", "--residual", "--input", input,
                "--output", output, "--batch-size", "64", "--device", "cpu", "--keep-input", "--baseline-tokens", "200",
                "--verify-rows", "20", "--verify-tolerance", "1e-5");
        assertTrue(out.contains("rows/s") && out.contains("tokens/s") && out.contains("engine only"), out);
        assertTrue(out.matches("(?s).*RESULT rows=300 tokens=\\d+ .*"), out);

        // the job closed its session (as under spark-submit); read the results back with a fresh one
        SparkSession s = SparkSession.builder().master("local[1]").config("spark.ui.enabled", "false")
                .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1").getOrCreate();
        List<Row> in = s.read().parquet(input).collectAsList();
        List<Row> got = s.read().parquet(output).collectAsList();
        assertEquals(in.size(), got.size(), "one output row per input row");
        Set<Long> idsIn = new HashSet<>(), idsOut = new HashSet<>();
        in.forEach(r -> idsIn.add(r.getLong(0)));
        got.forEach(r -> assertTrue(idsOut.add(r.getLong(0)), "id written twice: " + r.getLong(0)));
        assertEquals(idsIn, idsOut, "ids in = ids out");
        try (Checkpoint ckpt = Checkpoint.open(model);
             MoeEngine l1 = MoeEngines.open(ckpt, 1, Device.CPU, Precision.NATIVE, 1, 0);
             MoeEngine l0 = MoeEngines.open(ckpt, 0, Device.CPU, Precision.NATIVE, 1, 0)) {
            int h = ckpt.config().hiddenSize();
            for (Row r : got.subList(0, 50)) {
                float[] x = HiddenEncoding.FP32.decode(r.get(1));
                float[] y = l1.forward(x, x.length / h);
                for (int i = 0; i < y.length; i++) y[i] += x[i];
                float[] z = l0.forward(y, y.length / h);
                for (int i = 0; i < z.length; i++) z[i] += y[i];
                TensorChecks.assertClose(HiddenEncoding.FP32.decode(r.get(2)), z, 1e-5, "id " + r.getLong(0) + " (seed " + seed + ")");
            }
        }
    }

    @Test void throughputSweepWritesCsvAndChart() throws Exception {
        String input = tmp.resolve("sweep-input").toString();
        Path outDir = tmp.resolve("sweep");
        run(new GenerateInput(), "--model", model.toString(), "--rows", "120", "--tokens-per-row", "2", "--output", input);
        run(new ThroughputSweep(), "--model", model.toString(), "--layers", "0", "--input", input, "--batch-sizes", "8,64",
                "--parallelism", "1,2", "--repeats", "1", "--device", "cpu", "--output-dir", outDir.toString());
        List<String> csv = Files.readAllLines(outDir.resolve("sweep.csv"));
        assertEquals(5, csv.size(), String.join("\n", csv));
        for (String line : csv.subList(1, csv.size())) {
            String[] f = line.split(",");
            assertEquals("120", f[2]);
            assertEquals("240", f[3], "120 rows x 2 tokens");
            assertTrue(Double.parseDouble(f[6]) > 0, line);
        }
        byte[] png = Files.readAllBytes(outDir.resolve("sweep.png"));
        assertTrue(png.length > 1000 && png[1] == 'P' && png[2] == 'N' && png[3] == 'G', "a PNG chart");
    }
}
