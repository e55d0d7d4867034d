package dev.sparkmoe.cpu;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.model.MoeConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import static dev.sparkmoe.testing.TensorChecks.assertAllWritten;
import static dev.sparkmoe.testing.TensorChecks.freshSeed;
import static dev.sparkmoe.testing.TensorChecks.poisoned;
import static dev.sparkmoe.testing.TensorChecks.randomNormal;
import static dev.sparkmoe.testing.TensorChecks.relativeError;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CpuMoeEngineTest {
    /** fp32 GEMMs against float64: a few fp32 ulps of the output norm. */
    private static final double NATIVE_TOLERANCE = 2e-6;
    /**
     * FP8 against the float64 emulation of the same recipe: usually ~5e-7, but an fp32 SwiGLU value can land on the
     * other side of an e4m3 rounding boundary than the float64 one (one code step = 6-12% of that element); one such
     * flip in 64 tokens measured 5e-4. A missing or wrong quantization step gives ~3e-2 or worse.
     */
    private static final double FP8_TOLERANCE = 5e-3;

    @TempDir static Path dir;
    private static final Map<String, Checkpoint> CHECKPOINTS = new HashMap<>();

    static synchronized MoeLayerWeights layer(String preset, DType dtype) {
        Checkpoint ckpt = CHECKPOINTS.computeIfAbsent(preset + "-" + dtype, key -> {
            Path d = dir.resolve(key);
            SyntheticCheckpoint.write(SyntheticCheckpoint.preset(preset, 1, dtype), dtype, 1234, d, SyntheticCheckpoint.DEFAULT_SHARD_BYTES);
            return Checkpoint.open(d);
        });
        return MoeLayerWeights.load(ckpt, 0);
    }

    @AfterAll
    static void closeCheckpoints() {
        CHECKPOINTS.values().forEach(Checkpoint::close);
        CHECKPOINTS.clear();
    }

    static Stream<Arguments> familiesAndDtypes() {
        List<Arguments> a = new ArrayList<>();
        for (String preset : List.of("tiny-mixtral", "tiny-qwen3", "tiny-qwen2", "tiny-deepseek")) {
            for (DType d : DType.values()) a.add(Arguments.of(preset, d));
        }
        return a.stream();
    }

    private static double tolerance(Precision p) { return p == Precision.NATIVE ? NATIVE_TOLERANCE : FP8_TOLERANCE; }

    /** Engine and reference against the naive float64 layer, both precisions, fresh inputs, poisoned outputs. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("familiesAndDtypes")
    void matchesNaiveFloat64(String preset, DType dtype) {
        MoeLayerWeights w = layer(preset, dtype);
        int h = w.config().hiddenSize(), tokens = 48;
        long seed = freshSeed();
        float[] x = randomNormal(seed, tokens * h, 1.0);
        for (Precision p : Precision.values()) {
            double[] naive = new NaiveMoe(w, p).forward(x, tokens);
            String what = preset + " " + dtype + " " + p + " seed " + seed;
            try (CpuMoeEngine engine = new CpuMoeEngine(w, p, 2); MoeLayerReference ref = new MoeLayerReference(w, p)) {
                float[] fast = poisoned(tokens * h), slow = poisoned(tokens * h);
                engine.forward(x, tokens, fast);
                ref.forward(x, tokens, slow);
                assertAllWritten(fast, h, what + " engine");
                assertAllWritten(slow, h, what + " reference");
                double eFast = relativeError(fast, naive), eSlow = relativeError(slow, naive);
                assertTrue(eFast <= tolerance(p), what + ": engine vs naive relative error " + eFast);
                assertTrue(eSlow <= tolerance(p), what + ": reference vs naive relative error " + eSlow);
            }
        }
    }

    @Test
    void weightsConvertedPerCallGiveTheSameBitsAsResidentOnes() {
        MoeLayerWeights w = layer("tiny-deepseek", DType.BF16);
        int h = w.config().hiddenSize(), tokens = 50;
        float[] x = randomNormal(freshSeed(), tokens * h, 1.0);
        long oneExpert = 3L * 128 * h * 4;
        for (Precision p : Precision.values()) {
            float[] resident = run(new CpuMoeEngine(w, p, 2), x, tokens);
            // nothing resident, then the shared expert and two routed experts
            for (long budget : new long[] {0, 3 * oneExpert}) {
                CpuMoeEngine engine = new CpuMoeEngine(w, p, 2, budget);
                assertEquals(budget / oneExpert, engine.residentExperts());
                assertArrayEquals(resident, run(engine, x, tokens), p + " budget " + budget);
            }
        }
    }

    /** More tokens than one combine buffer holds: several passes (GEMM row counts change, so fp32 rounding may too). */
    @Test
    void severalPassesMatchNaive() {
        MoeLayerWeights w = layer("tiny-deepseek", DType.F8_E4M3);
        int h = w.config().hiddenSize(), tokens = 50;
        long seed = freshSeed();
        float[] x = randomNormal(seed, tokens * h, 1.0);
        for (Precision p : Precision.values()) {
            float[] out = run(new CpuMoeEngine(w, p, 2, 0, 7L * w.config().topK() * h * 4), x, tokens);
            double err = relativeError(out, new NaiveMoe(w, p).forward(x, tokens));
            assertTrue(err <= tolerance(p), p + " seed " + seed + ": " + err);
        }
    }

    @Test
    void expertsWithoutTokensAndOneToken() {
        MoeLayerWeights w = layer("tiny-mixtral", DType.F32);
        int h = w.config().hiddenSize();
        long seed = freshSeed();
        float[] x = randomNormal(seed, h, 1.0);
        RoutingResult r = Router.route(w.config(), Router.logits(x, 1, h, w.router().toFloats(), 8), null, 1);
        assertEquals(2, Arrays.stream(r.experts()).distinct().count(), "one token reaches 2 of 8 experts");
        float[] out = run(new CpuMoeEngine(w, Precision.NATIVE, 2), x, 1);
        double err = relativeError(out, new NaiveMoe(w, Precision.NATIVE).forward(x, 1));
        assertTrue(err <= NATIVE_TOLERANCE, "seed " + seed + ": " + err);
    }

    @Test
    void allTokensChoosingTheSameExperts() {
        MoeLayerWeights w = layer("tiny-qwen3", DType.BF16);
        int h = w.config().hiddenSize(), tokens = CpuMoeEngine.ROWS_PER_GEMM + 45; // spans two GEMM row blocks
        long seed = freshSeed();
        // A row aligned with the router rows of experts 0..k-1 (logits ~5 for them, ~0.3 for the rest), plus fresh
        // random parts, so the per-token noise below can never reorder the choice.
        float[] router = w.router().toFloats();
        float[] row = randomNormal(seed, h, 0.2);
        for (int e = 0; e < w.config().topK(); e++) for (int i = 0; i < h; i++) row[i] += 5 * router[e * h + i];
        float[] x = new float[tokens * h];
        float[] noise = randomNormal(seed + 1, tokens * h, 1e-3); // distinct rows, same choice
        for (int t = 0; t < tokens; t++) for (int i = 0; i < h; i++) x[t * h + i] = row[i] + noise[t * h + i];
        RoutingResult r = Router.route(w.config(), Router.logits(x, tokens, h, w.router().toFloats(), 16), null, tokens);
        assertEquals(w.config().topK(), Arrays.stream(r.experts()).distinct().count(), "seed " + seed + ": every token picks the same experts");
        for (Precision p : Precision.values()) {
            float[] out = run(new CpuMoeEngine(w, p, 2), x, tokens);
            double err = relativeError(out, new NaiveMoe(w, p).forward(x, tokens));
            assertTrue(err <= tolerance(p), p + " seed " + seed + ": " + err);
        }
    }

    @Test
    void bitwiseDeterministicAcrossThreadCountsAndCalls() {
        MoeLayerWeights w = layer("tiny-qwen2", DType.BF16);
        int h = w.config().hiddenSize(), tokens = 300;
        float[] x = randomNormal(freshSeed(), tokens * h, 1.0);
        for (Precision p : Precision.values()) {
            float[] one = run(new CpuMoeEngine(w, p, 1), x, tokens);
            try (CpuMoeEngine three = new CpuMoeEngine(w, p, 3)) {
                assertArrayEquals(one, three.forward(x, tokens), p + ": 1 vs 3 threads");
                assertArrayEquals(one, three.forward(x, tokens), p + ": second call");
            }
        }
    }

    @Test
    void concurrentForwardsAreIndependent() throws Exception {
        MoeLayerWeights w = layer("tiny-qwen3", DType.F32);
        int h = w.config().hiddenSize();
        int[] tokens = {1, 17, 64, 130};
        try (CpuMoeEngine engine = new CpuMoeEngine(w, Precision.NATIVE, 2)) {
            List<float[]> inputs = new ArrayList<>(), expected = new ArrayList<>();
            for (int t : tokens) {
                float[] x = randomNormal(freshSeed(), t * h, 1.0);
                inputs.add(x);
                expected.add(engine.forward(x, t));
            }
            ExecutorService callers = Executors.newFixedThreadPool(4);
            try {
                List<Future<float[]>> results = new ArrayList<>();
                for (int round = 0; round < 3; round++) {
                    for (int i = 0; i < tokens.length; i++) {
                        int n = i;
                        results.add(callers.submit((Callable<float[]>) () -> engine.forward(inputs.get(n), tokens[n])));
                    }
                }
                for (int i = 0; i < results.size(); i++) assertArrayEquals(expected.get(i % tokens.length), results.get(i).get());
            } finally {
                callers.shutdownNow();
            }
        }
    }

    @Test
    void nonFiniteInputIsRejectedNamingTheToken() {
        MoeLayerWeights w = layer("tiny-mixtral", DType.BF16);
        int h = w.config().hiddenSize();
        try (CpuMoeEngine engine = new CpuMoeEngine(w, Precision.NATIVE, 2)) {
            float[] x = randomNormal(freshSeed(), 4 * h, 1.0);
            x[2 * h + 5] = Float.NaN;
            float[] out = poisoned(4 * h);
            MoeEngineException e = assertThrows(MoeEngineException.class, () -> engine.forward(x, 4, out));
            assertTrue(e.getMessage().contains("token 2") && e.getMessage().contains("NaN"), e.getMessage());
            x[2 * h + 5] = Float.NEGATIVE_INFINITY;
            e = assertThrows(MoeEngineException.class, () -> engine.forward(x, 4, out));
            assertTrue(e.getMessage().contains("token 2") && e.getMessage().contains("Infinity"), e.getMessage());
            e = assertThrows(MoeEngineException.class, () -> engine.forward(x, 5, out));
            assertTrue(e.getMessage().contains("5 tokens"), e.getMessage());
        }
    }

    @Test
    void zeroTokensAndLifecycle() {
        MoeLayerWeights w = layer("tiny-mixtral", DType.F16);
        CpuMoeEngine engine = new CpuMoeEngine(w, Precision.FP8, 0);
        assertEquals(0, engine.forward(new float[0], 0).length);
        assertTrue(engine.deviceDescription().contains("threads"), engine.deviceDescription());
        engine.close();
        assertThrows(MoeEngineException.class, () -> engine.forward(new float[w.config().hiddenSize()], 1));
        assertThrows(MoeEngineException.class, engine::close);
        assertThrows(MoeEngineException.class, () -> new CpuMoeEngine(w, Precision.NATIVE, -1));
    }

    private static float[] run(MoeEngine engine, float[] x, int tokens) {
        try (engine) {
            MoeConfig c = engine.config();
            float[] out = poisoned(tokens * c.hiddenSize());
            engine.forward(x, tokens, out);
            assertAllWritten(out, c.hiddenSize(), engine.deviceDescription());
            return out;
        }
    }
}
