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
    void fastKernelsUseAPersistentGridNoLargerThanTheWork() {
        GroupedGemmConfig g1 = GroupedGemmConfig.choose(Gemm.GEMM1_SWIGLU, Operand.FP8, 1, 2048, 7168, 132);
        assertEquals("grouped_gemm1_swiglu_fp8", g1.kernel());
        assertEquals(128, g1.blockN(), "FP8 re-quantization needs 128 output columns per CTA");
        assertEquals(2 * (2048 / 128), g1.gridX(), "one 128-row block = two 64-row units x 16 column tiles");
        assertEquals(1024 + 5 * (64 * 128 + 256 * 128 + 512) + 80 + 1024, g1.dynamicSmemBytes());
        GroupedGemmConfig g2 = GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 4096, 7168, 2048, 132);
        assertEquals(132, g2.gridX());
        assertEquals("grouped_gemm2_fp8", g2.kernel());
        assertEquals(128, GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 4, 128 * 3, 2048, 132).blockN());
        assertEquals(4 * 3, GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 4, 128 * 3, 2048, 132).gridX(), "no more CTAs than units");
        assertEquals(384, g2.threads());
        assertEquals("grouped_gemm2_bf16_n128", GroupedGemmConfig.choose(Gemm.GEMM2, Operand.BF16, 8, 128 * 3, 1024, 132).kernel());
        assertEquals("grouped_gemm2_bf16", GroupedGemmConfig.choose(Gemm.GEMM2, Operand.BF16, 8, 4096, 1024, 132).kernel());
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
