package dev.sparkmoe.checkpoint;

import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.testing.TensorChecks;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Interoperability with the reference implementation (the Python {@code safetensors} package): we read the file it
 * wrote (src/test/resources/safetensors, made by make_fixture.py there), and, when it is installed, it reads ours.
 * The Python used is {@code $SPARKMOE_TEST_PYTHON}, else {@code python3}.
 */
class SafetensorsReferenceTest {
    @TempDir Path tmp;

    static Path fixture() {
        try {
            return Path.of(SafetensorsReferenceTest.class.getResource("/safetensors/reference.safetensors").toURI());
        } catch (URISyntaxException | NullPointerException e) {
            throw new IllegalStateException("test fixture safetensors/reference.safetensors is missing", e);
        }
    }

    @Test
    void readsTheReferenceWritersFile() {
        try (SafetensorsFile f = SafetensorsFile.open(fixture())) {
            assertEquals(6, f.names().size());
            assertEquals("pt", f.metadata().get("format"));
            float[] ramp = new float[6];
            for (int i = 0; i < 6; i++) ramp[i] = (i - 2) * 0.75f;
            assertArrayEquals(ramp, f.tensor("w.f32").toFloats());
            assertArrayEquals(new long[] {2, 3}, f.tensor("w.f32").shape());
            Tensor bf = f.tensor("w.bf16");
            assertArrayEquals(new long[] {3, 2}, bf.shape());
            for (int i = 0; i < 6; i++) assertEquals(Floats.bf16ToFloat(Floats.floatToBf16(ramp[i])), bf.get(i));
            assertArrayEquals(new float[] {-0.5f, -0.25f, 0f, 0.25f}, f.tensor("w.f16").toFloats());
            Tensor q = f.tensor("w.e4m3");
            assertArrayEquals(new float[] {0.5f, -1.75f, 448f, -0.0078125f}, q.toFloats());
            WeightMatrix m = WeightMatrix.of(q, f.tensor("w.e4m3_scale_inv"), 128, 128);
            assertArrayEquals(new float[] {0.125f, -0.4375f, 112f, -0.001953125f}, m.toFloats(), "e4m3 value x block scale");
            assertEquals("I64", f.otherDtypes().get("ids"));
            CheckpointException e = assertThrows(CheckpointException.class, () -> f.tensor("ids"));
            assertTrue(e.getMessage().contains("'ids'") && e.getMessage().contains("I64"), e.getMessage());
        }
    }

    /** The reference reader opens (and so validates) every file we write, and decodes the same values. */
    @Test
    void referenceReaderReadsOurFiles() throws Exception {
        String python = System.getenv().getOrDefault("SPARKMOE_TEST_PYTHON", "python3");
        Assumptions.assumeTrue(canImport(python, "import numpy, safetensors, ml_dtypes"), () -> {
            String why = "skipped: " + python + " lacks numpy, safetensors or ml_dtypes (set SPARKMOE_TEST_PYTHON to one that has them)";
            System.out.println("[SafetensorsReferenceTest] " + why);
            return why;
        });
        long seed = TensorChecks.freshSeed();
        float[] v = TensorChecks.randomNormal(seed, 2 * 130, 2.0);
        SafetensorsWriter w = new SafetensorsWriter();
        w.addFloats("a.f32", new long[] {2, 130}, v);
        w.add("b.bf16", DType.BF16, new long[] {130, 2}, b -> { for (float x : v) b.putShort(Floats.floatToBf16(x)); });
        w.add("c.f16", DType.F16, new long[] {260}, b -> { for (float x : v) b.putShort(Floats.floatToF16(x)); });
        w.add("d.e4m3", DType.F8_E4M3, new long[] {4, 65}, b -> { for (float x : v) b.put(Floats.floatToE4m3(x)); });
        Path single = tmp.resolve("all.safetensors");
        w.writeFile(single);
        Path sharded = tmp.resolve("ds");
        MoeConfig cfg = SyntheticCheckpoint.preset("tiny-deepseek", 1, DType.F8_E4M3);
        SyntheticCheckpoint.write(cfg, DType.F8_E4M3, seed, sharded, 1_000_000);

        String script = String.join("\n",
                "import sys, glob, numpy as np, ml_dtypes",
                "if not hasattr(np, 'float8_e4m3fn'): np.float8_e4m3fn = ml_dtypes.float8_e4m3fn",
                "from safetensors import safe_open",
                "for f in sys.argv[1:]:",
                "    with safe_open(f, framework='numpy') as s:",
                "        for k in s.keys():",
                "            t = s.get_tensor(k)",
                "            print(k, repr(float(t.astype(np.float64).sum())))",
                "");
        List<String> files = new java.util.ArrayList<>(List.of(single.toString()));
        try (var s = java.nio.file.Files.list(sharded)) {
            s.filter(p -> p.toString().endsWith(".safetensors")).sorted().forEach(p -> files.add(p.toString()));
        }
        assertTrue(files.size() > 2, "several shards: " + files);
        List<String> cmd = new java.util.ArrayList<>(List.of(python, "-c", script));
        cmd.addAll(files);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "python timed out");
        assertEquals(0, p.exitValue(), out);
        Map<String, Double> sums = new HashMap<>();
        out.lines().forEach(l -> {
            String[] kv = l.trim().split(" ");
            sums.put(kv[0], Double.parseDouble(kv[1]));
        });
        Map<String, Double> ours = new HashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(single)) {
            for (String n : f.names()) ours.put(n, sum(f.tensor(n)));
        }
        try (Checkpoint c = Checkpoint.open(sharded)) {
            for (String n : c.tensorNames()) ours.put(n, sum(c.tensor(n)));
        }
        assertEquals(ours.keySet(), sums.keySet(), "the reference reader sees every tensor");
        for (Map.Entry<String, Double> e : ours.entrySet()) {
            assertEquals(e.getValue(), sums.get(e.getKey()), 1e-9 * (1 + Math.abs(e.getValue())), e.getKey() + " (seed " + seed + ")");
        }
    }

    private static double sum(Tensor t) {
        double s = 0;
        for (float x : t.toFloats()) s += x;
        return s;
    }

    static boolean canImport(String python, String imports) {
        try {
            Process p = new ProcessBuilder(python, "-c", imports).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }
}
