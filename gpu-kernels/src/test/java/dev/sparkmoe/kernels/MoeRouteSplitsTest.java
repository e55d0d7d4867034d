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
}
