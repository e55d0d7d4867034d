package dev.sparkmoe.testing;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.cpu.MoeLayerReference;
import dev.sparkmoe.engine.Precision;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The FP8 recipe check: it is the CPU reference's recipe, and it forgives undecided codes only. */
class Fp8RecipeTest {
    @TempDir static Path dir;

    static MoeLayerWeights load(String preset, DType dtype) {
        Path d = dir.resolve(preset + "-" + dtype);
        if (!d.resolve("config.json").toFile().exists()) {
            SyntheticCheckpoint.write(SyntheticCheckpoint.preset(preset, 1, dtype), dtype, TensorChecks.freshSeed(), d, SyntheticCheckpoint.DEFAULT_SHARD_BYTES);
        }
        return MoeLayerWeights.load(Checkpoint.open(d), 0);
    }

    static double norm(double[] v) {
        double s = 0;
        for (double x : v) s += x * x;
        return Math.sqrt(s);
    }

    static float[] toFloats(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) f[i] = (float) v[i];
        return f;
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-deepseek", "tiny-qwen2", "tiny-mixtral"})
    void isTheCpuReferenceRecipe(String preset) {
        MoeLayerWeights w = load(preset, preset.equals("tiny-deepseek") ? DType.F8_E4M3 : DType.BF16);
        int h = w.config().hiddenSize(), t = 9;
        long seed = TensorChecks.freshSeed();
        float[] x = TensorChecks.randomNormal(seed, t * h, 1.0);
        try (MoeLayerReference ref = new MoeLayerReference(w, Precision.FP8)) {
            Fp8Recipe.Result r = Fp8Recipe.of(w).forward(x, t);
            // the reference rounds each dot product and the combine to fp32; the recipe here keeps float64
            TensorChecks.assertClose(ref.forward(x, t), r.output(), 1e-6, preset + " (seed " + seed + ")");
            Fp8Recipe.Resolution own = Fp8Recipe.resolve(r, toFloats(r.output()));
            assertEquals(0, own.taken(), "its own output needs no alternative");
            assertTrue(own.error() < 1e-7, "own output: " + own.error());
        }
    }

    /** Output = recipe + one undecided code taken the other way: ~1e-3 raw, resolved to fp32 rounding; other errors stay. */
    @Test
    void forgivesAnUndecidedCodeAndNothingElse() {
        MoeLayerWeights w = load("tiny-deepseek", DType.BF16);
        int h = w.config().hiddenSize(), t = 256;
        Fp8Recipe recipe = Fp8Recipe.of(w);
        Fp8Recipe.Result r = null;
        long seed = 0;
        for (int attempt = 0; attempt < 20 && (r == null || r.alternatives().isEmpty()); attempt++) {
            seed = TensorChecks.freshSeed();
            r = recipe.forward(TensorChecks.randomNormal(seed, t * h, 1.0), t);
        }
        assertFalse(r.alternatives().isEmpty(), "no undecided code in 20 inputs of " + t + " tokens");
        // the undecided code whose flip moves the output most (a code near zero moves it by little more than fp32 noise)
        Fp8Recipe.Alternative alt = r.alternatives().get(0);
        for (Fp8Recipe.Alternative a : r.alternatives()) if (norm(a.delta()) > norm(alt.delta())) alt = a;
        double[] flipped = r.output().clone();
        double[] shifted = r.output().clone();  // the same size of error in a direction no code explains
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int c = 0; c < h; c++) {
            flipped[alt.token() * h + c] += alt.delta()[c];
            shifted[alt.token() * h + c] += alt.delta()[(c + 1) % h] * (rnd.nextBoolean() ? 1 : -1);
        }
        double raw = TensorChecks.relativeError(toFloats(flipped), r.output());
        Fp8Recipe.Resolution f = Fp8Recipe.resolve(r, toFloats(flipped)), s = Fp8Recipe.resolve(r, toFloats(shifted));
        System.out.printf("[fp8 recipe test] %d undecided codes in %d tokens; one flipped: raw %.3e, resolved %.3e (%d taken); "
                + "same-size other error: resolved %.3e (%d taken)%n", r.alternatives().size(), t, raw, f.error(), f.taken(), s.error(), s.taken());
        assertTrue(raw > 1e-6, "the flip moves the output well past fp32 rounding: " + raw + " (seed " + seed + ")");
        assertTrue(f.error() < 1e-7 && f.taken() >= 1, "flip not resolved: " + f);
        assertTrue(s.error() > 0.5 * raw, "an error no undecided code explains was forgiven: " + s + " vs raw " + raw);
    }
}
