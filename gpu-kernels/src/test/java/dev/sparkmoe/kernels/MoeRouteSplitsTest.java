package dev.sparkmoe.kernels;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MoeRouteSplitsTest {
    @Test
    void fewTokensSplitKSoTheGpuIsCoveredAndManyDoNot() {
        // DeepSeek-V3 router: 256 outputs = 4 tiles of 64; 16 tokens = 1 token tile -> 4 CTAs without splitting
        int s16 = MoeRoute.splits(16, 256, 7168, 132);
        assertEquals(28, s16); // 2*132/4 = 66, capped at 7168/256 = 28
        assertEquals(1, MoeRoute.splits(4096, 256, 7168, 132));
        assertEquals(8, MoeRoute.splits(512, 256, 7168, 132));
        assertEquals(1, MoeRoute.splits(16, 8, 128, 132)); // K too short to split
    }

    @Test
    void partialBufferCoversEverySplitLaunch() {
        for (int cap : new int[] {16, 32, 64, 128, 512, 1024, 4096}) {
            for (int nOut : new int[] {8, 9, 61, 128, 256}) {
                int s = MoeRoute.splits(cap, nOut, 7168, 132);
                if (s > 1) assertTrue((long) s * cap * nOut <= MoeRoute.partialDoubles(132), cap + " " + nOut);
            }
        }
    }

    @Test
    void routerKernelNamesParseAndOnlyTc2WantsFp64Weights() {
        assertEquals(MoeRoute.Kernel.TC2, MoeRoute.Kernel.parse("tc2"));
        assertEquals(MoeRoute.Kernel.TC, MoeRoute.Kernel.parse("TC"));
        assertEquals(MoeRoute.Kernel.SIMT, MoeRoute.Kernel.parse("simt"));
        assertTrue(MoeRoute.Kernel.TC2.wantsF64Weights());
        assertTrue(!MoeRoute.Kernel.TC.wantsF64Weights() && !MoeRoute.Kernel.SIMT.wantsF64Weights());
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> MoeRoute.Kernel.parse("dmma"));
        assertTrue(e.getMessage().contains("simt, tc or tc2") && e.getMessage().contains("dmma"), e.getMessage());
        // shared memory of tc2: 3 stages of fp64 w and fp32 x tiles plus one fp64 x tile, 64 rows x 36 each
        assertEquals(101376, MoeRoute.TC2_SMEM_BYTES);
    }
}
