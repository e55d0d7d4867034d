package dev.sparkmoe.checkpoint;

import dev.sparkmoe.model.ModelFamily;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.model.ModelFamily.Projection;
import dev.sparkmoe.testing.TensorChecks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SyntheticCheckpointTest {
    @TempDir Path tmp;

    /** The depth-scaled variant differs only in the down projections, which are the unscaled ones times the scale. */
    @Test void downScaleScalesOnlyTheDownProjections() {
        MoeConfig cfg = SyntheticCheckpoint.preset("tiny-qwen3", 2, DType.F32);
        long seed = TensorChecks.freshSeed();
        SyntheticCheckpoint.write(cfg, DType.F32, seed, tmp.resolve("plain"), SyntheticCheckpoint.DEFAULT_SHARD_BYTES);
        SyntheticCheckpoint.write(cfg, DType.F32, seed, tmp.resolve("scaled"), SyntheticCheckpoint.DEFAULT_SHARD_BYTES, 0.25);
        assertEquals(0.5, SyntheticCheckpoint.depthScale(cfg), 1e-12, "1/sqrt(2 x 2 layers)");
        ModelFamily f = cfg.family();
        try (Checkpoint plain = Checkpoint.open(tmp.resolve("plain")); Checkpoint scaled = Checkpoint.open(tmp.resolve("scaled"))) {
            for (Projection p : Projection.values()) {
                String name = f.expertWeight(1, 3, p);
                float[] a = plain.tensor(name).toFloats(), b = scaled.tensor(name).toFloats();
                if (p == Projection.DOWN) for (int i = 0; i < a.length; i++) a[i] *= 0.25f; // a power of two: exact
                assertArrayEquals(a, b, name + " (seed " + seed + ")");
            }
        }
        assertThrows(CheckpointException.class, () -> SyntheticCheckpoint.write(cfg, DType.F32, seed, tmp.resolve("bad"),
                SyntheticCheckpoint.DEFAULT_SHARD_BYTES, 0));
    }

    /** 48 depth-scaled layers applied as x + moe(x) keep the hidden state's RMS near its start (no normalization). */
    @Test void depthScaledResidualStackStaysBounded() {
        int layers = 48;
        MoeConfig cfg = SyntheticCheckpoint.preset("tiny-qwen3", layers, DType.F32);
        long seed = TensorChecks.freshSeed();
        Path dir = tmp.resolve("deep");
        SyntheticCheckpoint.write(cfg, DType.F32, seed, dir, SyntheticCheckpoint.DEFAULT_SHARD_BYTES, SyntheticCheckpoint.depthScale(cfg));
        int h = cfg.hiddenSize(), tokens = 16;
        float[] x = TensorChecks.randomNormal(seed, tokens * h, 1.0);
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            for (int l = 0; l < layers; l++) {
                try (dev.sparkmoe.cpu.CpuMoeEngine e = new dev.sparkmoe.cpu.CpuMoeEngine(MoeLayerWeights.load(ckpt, l),
                        dev.sparkmoe.engine.Precision.NATIVE, 1)) {
                    float[] y = e.forward(x, tokens);
                    for (int i = 0; i < y.length; i++) y[i] += x[i];
                    x = y;
                }
            }
        }
        double sum = 0;
        for (float v : x) sum += (double) v * v;
        double rms = Math.sqrt(sum / x.length);
        assertTrue(rms > 0.5 && rms < 3, "RMS after " + layers + " depth-scaled residual layers: " + rms + " (seed " + seed + ")");
    }
}
