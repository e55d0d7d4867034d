package dev.sparkmoe.gpu;

import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.kernels.MoeDispatch;
import dev.sparkmoe.model.ModelFamily;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.model.ScoringFunction;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LayerWorkspaceSizesTest {
    @Test
    void rowBlocksCoverEveryExpertsPadding() {
        // 4096 tokens x top-8 over 256 experts: at most 32768/128 full blocks plus one partial block per expert
        assertEquals(256 + 256, MoeDispatch.maxRowBlocks(4096, 8, 256));
        // few tokens: never more blocks than entries
        assertEquals(8, MoeDispatch.maxRowBlocks(1, 8, 256));
        // worst case by brute force: spread entries so that as many experts as possible have a partial block
        for (int tokens : new int[] {1, 3, 17, 100, 1000}) {
            for (int k : new int[] {1, 2, 8}) {
                int experts = 64, entries = tokens * k;
                int used = Math.min(experts, entries);
                int worst = 0; // entries spread as evenly as possible over `used` experts
                for (int e = 0; e < used; e++) worst += (entries / used + (e < entries % used ? 1 : 0) + 127) / 128;
                assertTrue(MoeDispatch.maxRowBlocks(tokens, k, experts) >= worst, tokens + "x" + k);
            }
        }
    }

    @Test
    void sizesFollowTheCapacity() {
        MoeConfig c = SyntheticCheckpoint.preset("deepseek-v3", 1, DType.F8_E4M3);
        LayerWorkspace.Sizes s = LayerWorkspace.Sizes.of(c, 4096);
        assertEquals(128, s.chunks()); // 4096*8 entries: 128 chunks (the most) of 256
        assertEquals(512L * 128, s.routedRows());
        assertEquals(32, s.sharedRowBlocks());
        assertEquals(0, LayerWorkspace.Sizes.of(SyntheticCheckpoint.preset("tiny-mixtral", 1, DType.BF16), 16).sharedRows());
    }

    @Test
    void unsupportedShapesAreRefusedWithTheReason() {
        MoeConfig odd = new MoeConfig(ModelFamily.MIXTRAL, 200, 128, 8, 2, 0, false, ScoringFunction.SOFTMAX, 1, 1, true, 1f,
                false, 1, Set.of(0), null);
        MoeEngineException e = assertThrows(MoeEngineException.class, () -> GpuMoeEngine.checkSupported(odd));
        assertTrue(e.getMessage().contains("hidden size 200"), e.getMessage());
        MoeConfig oddShared = new MoeConfig(ModelFamily.QWEN2_MOE, 256, 128, 8, 2, 100, true, ScoringFunction.SOFTMAX, 1, 1, false, 1f,
                false, 1, Set.of(0), null);
        e = assertThrows(MoeEngineException.class, () -> GpuMoeEngine.checkSupported(oddShared));
        assertTrue(e.getMessage().contains("shared expert intermediate size 100"), e.getMessage());
        GpuMoeEngine.checkSupported(SyntheticCheckpoint.preset("deepseek-v3", 1, DType.F8_E4M3));
    }
}
