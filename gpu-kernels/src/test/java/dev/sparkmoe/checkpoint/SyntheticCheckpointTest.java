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
}
