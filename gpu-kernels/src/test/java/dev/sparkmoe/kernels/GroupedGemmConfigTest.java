package dev.sparkmoe.kernels;

import dev.sparkmoe.kernels.GroupedGemmConfig.Gemm;
import dev.sparkmoe.kernels.GroupedGemmConfig.Operand;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GroupedGemmConfigTest {
    @Test
    void referenceKernelCoversEveryRowBlockAndColumnTile() {
        GroupedGemmConfig c = GroupedGemmConfig.reference(Gemm.GEMM2, Operand.FP8, 37, 7168, 2048);
        assertEquals("grouped_gemm2_fp8_ref", c.kernel());
        assertEquals(7168 / 128, c.gridX());
        assertEquals(37, c.gridY());
        assertEquals(128, c.threads());
        assertEquals(0, c.dynamicSmemBytes());
    }

    @Test
    void choiceIsDeterministicAndNamesAnEntryPoint() {
        for (Gemm g : Gemm.values()) {
            for (Operand o : Operand.values()) {
                GroupedGemmConfig a = GroupedGemmConfig.choose(g, o, 64, 4096, 7168, 132);
                assertEquals(a, GroupedGemmConfig.choose(g, o, 64, 4096, 7168, 132));
                assertTrue(a.kernel().startsWith(GroupedGemmConfig.baseName(g, o)), a.toString());
                assertTrue(a.threads() % 128 == 0 && a.threads() <= 1024, a.toString());
                assertTrue(a.dynamicSmemBytes() <= 227 * 1024, a.toString());
                assertTrue((long) a.gridX() * a.gridY() >= 1, a.toString());
            }
        }
    }

    @Test
    void rejectsShapesTheKernelsCannotRun() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> GroupedGemmConfig.choose(Gemm.GEMM1_SWIGLU, Operand.BF16, 4, 1000, 4096, 132));
        assertTrue(e.getMessage().contains("N = 1000"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 4, 4096, 100, 132));
        assertTrue(e.getMessage().contains("K = 100"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 0, 4096, 128, 132));
        assertTrue(e.getMessage().contains("maxRowBlocks"), e.getMessage());
    }
}
