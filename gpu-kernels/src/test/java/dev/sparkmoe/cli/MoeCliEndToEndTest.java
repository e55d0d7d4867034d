package dev.sparkmoe.cli;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.checkpoint.Floats;
import dev.sparkmoe.engine.Device;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngines;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.npy.NpyDType;
import dev.sparkmoe.npy.NpyFile;
import dev.sparkmoe.npy.NpyWriter;
import dev.sparkmoe.testing.TensorChecks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static dev.sparkmoe.cli.CliHarness.moe;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** generate -> inspect -> run on the CPU, the output checked against the CPU engine run directly. */
class MoeCliEndToEndTest {
    @TempDir Path tmp;

    @ParameterizedTest(name = "{0} {1} weights, {2} input, {3}")
    @CsvSource({
        "tiny-qwen3,    bf16, f32,  native",
        "tiny-mixtral,  f32,  bf16, native",
        "tiny-qwen2,    f16,  f32,  native",
        "tiny-deepseek, fp8,  f32,  fp8",
        "tiny-deepseek, bf16, bf16, fp8",
    })
    void generateInspectRunMatchesTheEngine(String preset, String dtype, String inputDtype, String precision) throws Exception {
        Path model = tmp.resolve("model");
        long seed = TensorChecks.freshSeed() & 0xffff;
        CliHarness.Result gen = moe("generate", "--preset", preset, "--layers", 2, "--dtype", dtype, "--seed", seed,
                "--out", model, "--input-tokens", 37, "--input-dtype", inputDtype);
        assertEquals(0, gen.code(), gen::toString);
        assertTrue(gen.err().contains("wrote " + preset), gen::toString);

        CliHarness.Result inspect = moe("inspect", "--model", model);
        assertEquals(0, inspect.code(), inspect::toString);
        try (Checkpoint c = Checkpoint.open(model)) {
            assertTrue(inspect.out().contains(c.config().family().hfModelType()), inspect::toString);
            assertTrue(inspect.out().contains(c.config().numExperts() + " routed experts, top-" + c.config().topK()), inspect::toString);
        }
        assertTrue(inspect.out().contains("MoE layers 0..1 (2)"), inspect::toString);

        Path input = model.resolve("input.npy");
        try (NpyFile f = NpyFile.open(input)) {
            assertEquals(inputDtype.equals("bf16") ? NpyDType.UINT16 : NpyDType.FLOAT32, f.dtype());
        }
        Path output = tmp.resolve("y.npy");
        CliHarness.Result run = moe("run", "--model", model, "--layer", 1, "--input", input, "--output", output,
                "--device", "cpu", "--precision", precision, "--threads", 2);
        assertEquals(0, run.code(), run::toString);
        assertTrue(run.err().contains("tokens: 37"), run::toString);
        assertTrue(run.err().contains("tokens/s"), run::toString);

        float[] x = inputAsFloats(input);
        float[] expected = TensorChecks.poisoned(x.length);
        try (Checkpoint c = Checkpoint.open(model);
             MoeEngine engine = MoeEngines.open(c, 1, Device.CPU, Precision.parse(precision), 2, 0)) {
            engine.forward(x, 37, expected);
        }
        try (NpyFile y = NpyFile.open(output)) {
            assertEquals(NpyDType.FLOAT32, y.dtype());
            try (Checkpoint c = Checkpoint.open(model)) {
                assertArrayEquals(new long[] {37, c.config().hiddenSize()}, y.shape());
            }
            float[] got = y.readFloat32();
            TensorChecks.assertAllWritten(got, got.length / 37, "moe run output");
            assertArrayEquals(expected, got, "the CLI computes exactly what the engine computes");
            double rms = 0;
            for (float v : got) rms += v * v;
            rms = Math.sqrt(rms / got.length);
            assertTrue(rms > 1e-3 && rms < 100, "activations stay O(1): rms " + rms);
        }
    }

    private static float[] inputAsFloats(Path input) {
        try (NpyFile f = NpyFile.open(input)) {
            if (f.dtype() == NpyDType.FLOAT32) return f.readFloat32();
            short[] bits = f.readUint16();
            float[] v = new float[bits.length];
            for (int i = 0; i < v.length; i++) v[i] = Floats.bf16ToFloat(bits[i]);
            return v;
        }
    }

    @Test
    void zeroTokensGiveAnEmptyOutput() throws Exception {
        Path model = tmp.resolve("m");
        assertEquals(0, moe("generate", "--preset", "tiny-mixtral", "--out", model).code());
        Path in = tmp.resolve("x.npy");
        NpyWriter.writeFloat32(in, new long[] {0, 256}, new float[0]);
        Path out = tmp.resolve("y.npy");
        CliHarness.Result r = moe("run", "--model", model, "--layer", 0, "--input", in, "--output", out, "--device", "cpu");
        assertEquals(0, r.code(), r::toString);
        try (NpyFile y = NpyFile.open(out)) {
            assertArrayEquals(new long[] {0, 256}, y.shape());
        }
        assertTrue(Files.size(out) > 0);
    }
}
