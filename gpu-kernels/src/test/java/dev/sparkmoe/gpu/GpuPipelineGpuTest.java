package dev.sparkmoe.gpu;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.cpu.CpuMoeEngine;
import dev.sparkmoe.engine.HostMoeStack;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.engine.MoeStack;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.testing.TensorChecks;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pipelined forward (every {@link ForwardMode}) and device-resident stacks: concurrent callers get results bitwise
 * identical to sequential calls, whatever the mode and across launch splits; stacks bitwise equal to layer-by-layer
 * calls with the residual on the host, and close to the CPU engine's stack; outputs poisoned before every call.
 */
@GpuTest
class GpuPipelineGpuTest {
    /** Token counts per caller: below, at and above a launch limit of 64 (see {@link #withLaunchLimit}), and buckets apart. */
    static final int[] COUNTS = {1, 63, 64, 65, 200, 7, 130, 500};
    static final int THREADS = 8, REPEATS = 6;

    @TempDir static Path dir;
    static Checkpoint ckpt;

    @BeforeAll
    static void checkpoint() {
        MoeConfig c = SyntheticCheckpoint.preset("tiny-deepseek", 3, DType.BF16);
        SyntheticCheckpoint.write(c, DType.BF16, TensorChecks.freshSeed(), dir, SyntheticCheckpoint.DEFAULT_SHARD_BYTES);
        ckpt = Checkpoint.open(dir);
    }

    static GpuMoeEngine open(int layer, ForwardMode mode, Integer launchLimit) {
        System.setProperty(GpuEngineSettings.FORWARD_MODE.key(), mode.name().toLowerCase());
        if (launchLimit != null) System.setProperty(GpuMoeEngine.MAX_TOKENS_PROPERTY, launchLimit.toString());
        try {
            return GpuMoeEngine.open(MoeLayerWeights.load(ckpt, layer), Precision.FP8, 0);
        } finally {
            System.clearProperty(GpuEngineSettings.FORWARD_MODE.key());
            System.clearProperty(GpuMoeEngine.MAX_TOKENS_PROPERTY);
        }
    }

    static float[][] inputs(int h) {
        float[][] xs = new float[COUNTS.length][];
        for (int i = 0; i < xs.length; i++) xs[i] = TensorChecks.randomNormal(TensorChecks.freshSeed(), COUNTS[i] * h, 1.0);
        return xs;
    }

    /** Runs every input REPEATS times from THREADS threads at once, each call into a poisoned output; returns the first result of each. */
    static float[][] concurrently(float[][] xs, int h, Forward f) throws Exception {
        float[][] got = new float[xs.length][];
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            List<Future<float[]>> fs = new ArrayList<>();
            for (int i = 0; i < xs.length; i++) {
                int c = i;
                Callable<float[]> call = () -> {
                    float[] first = null;
                    for (int rep = 0; rep < REPEATS; rep++) {
                        float[] out = TensorChecks.poisoned(COUNTS[c] * h);
                        f.forward(xs[c], COUNTS[c], out);
                        TensorChecks.assertAllWritten(out, h, "caller " + c + " (" + COUNTS[c] + " tokens) repeat " + rep);
                        if (first == null) first = out;
                        else assertArrayEquals(first, out, "caller " + c + " repeat " + rep + " differs from its first call");
                    }
                    return first;
                };
                fs.add(pool.submit(call));
            }
            for (int i = 0; i < fs.size(); i++) got[i] = fs.get(i).get(120, TimeUnit.SECONDS);
        } finally {
            pool.shutdownNow();
        }
        return got;
    }

    interface Forward { void forward(float[] x, int tokens, float[] out); }

    static float[][] sequentially(float[][] xs, int h, Forward f) {
        float[][] got = new float[xs.length][];
        for (int i = 0; i < xs.length; i++) {
            got[i] = TensorChecks.poisoned(COUNTS[i] * h);
            f.forward(xs[i], COUNTS[i], got[i]);
            TensorChecks.assertAllWritten(got[i], h, "sequential call " + i);
        }
        return got;
    }

    /** Every mode, with and without launch splitting: concurrent == sequential (serial mode, no split), bitwise. */
    @Test
    void concurrentCallersMatchSequentialCallsBitwiseInEveryMode() throws Exception {
        int h = MoeLayerWeights.load(ckpt, 0).config().hiddenSize();
        float[][] xs = inputs(h);
        float[][] reference;
        try (GpuMoeEngine serial = open(0, ForwardMode.SERIAL, null)) {
            reference = sequentially(xs, h, serial::forward);
        }
        for (ForwardMode mode : ForwardMode.values()) {
            for (Integer limit : new Integer[] {null, 64}) {
                try (GpuMoeEngine e = open(0, mode, limit)) {
                    assertEquals(mode, e.forwardMode());
                    float[][] got = concurrently(xs, h, e::forward);
                    for (int i = 0; i < xs.length; i++) {
                        assertArrayEquals(reference[i], got[i], mode + " launch limit " + (limit == null ? "default" : limit) + ", caller " + i
                                + " (" + COUNTS[i] + " tokens)");
                    }
                    System.out.printf("[pipeline] %-10s limit %-7s %d callers x %d repeats on %d threads: bitwise equal to sequential%n",
                            mode, limit == null ? "default" : limit, xs.length, REPEATS, THREADS);
                }
            }
        }
    }

    /** Stacks of 3 layers, of 4 with a layer repeated back to back and later, and of 1, with and without residual, under concurrency. */
    @Test
    void deviceResidentStacksMatchHostStacksBitwise() throws Exception {
        int h = MoeLayerWeights.load(ckpt, 0).config().hiddenSize();
        float[][] xs = inputs(h);
        for (ForwardMode mode : new ForwardMode[] {ForwardMode.OVERLAPPED, ForwardMode.PIPELINED}) {
            for (Integer limit : new Integer[] {null, 64}) {
                try (GpuMoeEngine l0 = open(0, mode, limit); GpuMoeEngine l1 = open(1, mode, null); GpuMoeEngine l2 = open(2, mode, limit)) {
                    for (List<MoeEngine> layers : List.of(List.<MoeEngine>of(l0, l1, l2), List.<MoeEngine>of(l2, l2, l0, l2), List.<MoeEngine>of(l1))) {
                        for (boolean residual : new boolean[] {false, true}) {
                            MoeStack device = MoeStack.of(layers, residual);
                            assertInstanceOf(GpuMoeStack.class, device);
                            MoeStack host = new HostMoeStack(layers, residual);
                            float[][] expected = sequentially(xs, h, host::forward);
                            float[][] got = concurrently(xs, h, device::forward);
                            String what = mode + " limit " + limit + " layers " + names(layers) + " residual " + residual;
                            for (int i = 0; i < xs.length; i++) assertArrayEquals(expected[i], got[i], what + ", caller " + i);
                            System.out.printf("[stack] %s: device-resident == host round trips, bitwise (%d callers, %d threads)%n",
                                    what, xs.length, THREADS);
                        }
                    }
                }
            }
        }
    }

    static String names(List<MoeEngine> layers) {
        StringBuilder b = new StringBuilder();
        for (MoeEngine e : layers) b.append(b.length() == 0 ? "" : ",").append(e.layer());
        return "[" + b + "]";
    }

    /**
     * The device-resident stack (FP8) against the CPU engine (FP8 emulation), in float64, layer by layer along the chain:
     * the output of the first i layers of the GPU stack against CPU layer i applied to the GPU's output of the first i-1
     * (plus the residual on the host). Comparing with a free-running CPU stack instead is not meaningful: the layers'
     * small FP8 differences flip near-tied top-k choices of the next layer's router (a different expert for that token),
     * which moved 3 chained layers of tiny-deepseek by ~0.2 (H200 call 1); that figure is printed, not asserted.
     */
    @Test
    void deviceResidentStackIsCloseToTheCpuEngineLayerByLayer() {
        int t = 300;
        try (GpuMoeEngine l0 = open(0, ForwardMode.PIPELINED, null); GpuMoeEngine l1 = open(1, ForwardMode.PIPELINED, null);
             GpuMoeEngine l2 = open(2, ForwardMode.PIPELINED, null);
             MoeEngine c0 = new CpuMoeEngine(MoeLayerWeights.load(ckpt, 0), Precision.FP8, 0);
             MoeEngine c1 = new CpuMoeEngine(MoeLayerWeights.load(ckpt, 1), Precision.FP8, 0);
             MoeEngine c2 = new CpuMoeEngine(MoeLayerWeights.load(ckpt, 2), Precision.FP8, 0)) {
            int h = l0.config().hiddenSize();
            List<MoeEngine> gpu = List.of(l0, l1, l2), cpu = List.of(c0, c1, c2);
            for (boolean residual : new boolean[] {false, true}) {
                long seed = TensorChecks.freshSeed();
                float[] x = TensorChecks.randomNormal(seed, t * h, 1.0);
                float[] in = x;
                for (int i = 0; i < 3; i++) {
                    float[] out = TensorChecks.poisoned(t * h);
                    MoeStack.of(gpu.subList(0, i + 1), residual).forward(x, t, out);
                    TensorChecks.assertAllWritten(out, h, "GPU stack of " + (i + 1));
                    float[] ref = cpu.get(i).forward(in, t);
                    if (residual) for (int k = 0; k < ref.length; k++) ref[k] += in[k];
                    double err = TensorChecks.relativeError(out, ref);
                    System.out.printf("[stack vs cpu] tiny-deepseek FP8 residual %-5s layer %d of the chain T=%d rel.err %.3e (tol %.0e) seed %d%n",
                            residual, i, t, err, GpuMoeEngineGpuTest.TOL_FP8_TENSOR_CORES, seed);
                    assertTrue(err <= GpuMoeEngineGpuTest.TOL_FP8_TENSOR_CORES,
                            "layer " + i + " of the GPU stack vs the CPU engine, residual " + residual + ": " + err + " (seed " + seed + ")");
                    in = out;
                }
                double free = TensorChecks.relativeError(in, MoeStack.of(cpu, residual).forward(x, t));
                System.out.printf("[stack vs cpu] tiny-deepseek FP8 residual %-5s 3 layers vs a free-running CPU stack: %.3e (routing flips; not asserted)%n",
                        residual, free);
            }
        }
    }

    /** Two stacks over the same engines in opposite orders, run at once, do not deadlock and stay correct. */
    @Test
    void stacksSharingEnginesInOppositeOrdersDoNotDeadlock() throws Exception {
        try (GpuMoeEngine l0 = open(0, ForwardMode.OVERLAPPED, null); GpuMoeEngine l1 = open(1, ForwardMode.OVERLAPPED, null)) {
            int h = l0.config().hiddenSize(), t = 100;
            MoeStack ab = MoeStack.of(List.of(l0, l1), true), ba = MoeStack.of(List.of(l1, l0), true);
            float[] x = TensorChecks.randomNormal(TensorChecks.freshSeed(), t * h, 1.0);
            float[] wantAb = new HostMoeStack(List.of(l0, l1), true).forward(x, t), wantBa = new HostMoeStack(List.of(l1, l0), true).forward(x, t);
            ExecutorService pool = Executors.newFixedThreadPool(6);
            try {
                List<Future<Boolean>> fs = new ArrayList<>();
                for (int i = 0; i < 6; i++) {
                    MoeStack s = i % 3 == 0 ? ab : i % 3 == 1 ? ba : null;
                    float[] want = i % 3 == 0 ? wantAb : i % 3 == 1 ? wantBa : l0.forward(x, t);
                    fs.add(pool.submit(() -> {
                        for (int r = 0; r < 20; r++) {
                            float[] got = s == null ? l0.forward(x, t) : s.forward(x, t);
                            if (!Arrays.equals(want, got)) return false;
                        }
                        return true;
                    }));
                }
                for (Future<Boolean> f : fs) assertTrue(f.get(120, TimeUnit.SECONDS), "a caller got a different result");
            } finally {
                pool.shutdownNow();
            }
        }
    }

    @Test
    void closedEnginesAndBadCallsAreRefused() {
        GpuMoeEngine l0 = open(0, ForwardMode.OVERLAPPED, null);
        GpuMoeEngine l1 = open(1, ForwardMode.OVERLAPPED, null);
        int h = l0.config().hiddenSize();
        MoeStack s = MoeStack.of(List.of(l0, l1), false);
        float[] x = TensorChecks.randomNormal(TensorChecks.freshSeed(), 4 * h, 1.0);
        assertThrows(MoeEngineException.class, () -> s.forward(x, 4, x), "same array in and out");
        assertThrows(MoeEngineException.class, () -> s.forward(x, 5, new float[5 * h]), "input too short");
        l1.close();
        MoeEngineException e = assertThrows(MoeEngineException.class, () -> s.forward(x, 4));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        l0.forward(x, 4); // the open engine still works alone
        l0.close();
        assertThrows(MoeEngineException.class, () -> l0.forward(x, 4));
        assertThrows(MoeEngineException.class, l0::close, "second close");
        System.setProperty(GpuEngineSettings.FORWARD_MODE.key(), "sometimes");
        try {
            MoeEngineException bad = assertThrows(MoeEngineException.class, () -> GpuMoeEngine.open(MoeLayerWeights.load(ckpt, 0), Precision.FP8, 0));
            assertTrue(bad.getMessage().contains(GpuEngineSettings.FORWARD_MODE.key()), bad.getMessage());
        } finally {
            System.clearProperty(GpuEngineSettings.FORWARD_MODE.key());
        }
    }
}
