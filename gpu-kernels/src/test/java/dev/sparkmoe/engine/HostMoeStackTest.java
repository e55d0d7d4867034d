package dev.sparkmoe.engine;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.cpu.CpuMoeEngine;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.testing.TensorChecks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The host stack on CPU engines: layer order, the residual, input left unchanged, argument checks; MoeStack.of's choice. */
class HostMoeStackTest {
    @TempDir Path dir;

    @Test
    void appliesTheLayersInOrderWithAndWithoutResidual() {
        MoeConfig c = SyntheticCheckpoint.preset("tiny-qwen3", 2, DType.BF16);
        SyntheticCheckpoint.write(c, DType.BF16, TensorChecks.freshSeed(), dir, SyntheticCheckpoint.DEFAULT_SHARD_BYTES);
        Checkpoint ck = Checkpoint.open(dir);
        int h = c.hiddenSize(), t = 9;
        try (MoeEngine l0 = new CpuMoeEngine(MoeLayerWeights.load(ck, 0), Precision.NATIVE, 1);
             MoeEngine l1 = new CpuMoeEngine(MoeLayerWeights.load(ck, 1), Precision.NATIVE, 1)) {
            float[] x = TensorChecks.randomNormal(TensorChecks.freshSeed(), t * h, 1.0);
            float[] xCopy = x.clone();
            for (boolean residual : new boolean[] {false, true}) {
                MoeStack s = MoeStack.of(List.of(l0, l1), residual);
                assertInstanceOf(HostMoeStack.class, s, "CPU engines run through host memory");
                float[] out = TensorChecks.poisoned(t * h);
                s.forward(x, t, out);
                float[] mid = l0.forward(x, t);
                if (residual) for (int k = 0; k < mid.length; k++) mid[k] += x[k];
                float[] expect = l1.forward(mid, t);
                if (residual) for (int k = 0; k < expect.length; k++) expect[k] += mid[k];
                assertArrayEquals(expect, out, "residual " + residual);
                assertArrayEquals(xCopy, x, "the input is left unchanged");
            }
            MoeStack s = MoeStack.of(List.of(l0, l1), true);
            assertThrows(MoeEngineException.class, () -> s.forward(x, t, x), "same array in and out");
            float[] bad = x.clone();
            bad[h + 3] = Float.NaN;
            MoeEngineException e = assertThrows(MoeEngineException.class, () -> s.forward(bad, t, new float[t * h]));
            assertTrue(e.getMessage().contains("token 1"), e.getMessage());
            assertThrows(MoeEngineException.class, () -> MoeStack.of(List.of(), false));
            String why = dev.sparkmoe.gpu.GpuMoeStack.unsupportedReason(List.of(l0, l1)).orElseThrow();
            assertTrue(why.contains("does not run on the GPU engine"), why);
            MoeEngineException notGpu = assertThrows(MoeEngineException.class, () -> dev.sparkmoe.gpu.GpuMoeStack.of(List.of(l0, l1), false));
            assertTrue(notGpu.getMessage().contains("device-resident"), notGpu.getMessage());
        }
    }
}
