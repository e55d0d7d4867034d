package dev.sparkmoe.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** How the dispatch layout splits its routing entries into chunks (no GPU needed). */
class MoeDispatchChunksTest {

    @Test
    void everyLaunchFitsItsChunksAndBuffersSizedForALargerCapacityServeIt() {
        int previous = 0;
        for (int topK : new int[] {1, 2, 6, 8}) {
            previous = 0;
            for (int tokens = 1; tokens <= 70_000; tokens += tokens < 600 ? 1 : 97) {
                int chunks = MoeDispatch.chunks(tokens, topK), entries = MoeDispatch.chunkEntries(tokens, topK);
                long n = (long) tokens * topK;
                assertTrue(chunks >= 1 && chunks <= MoeDispatch.MAX_CHUNKS, tokens + " x " + topK + ": " + chunks + " chunks");
                assertEquals(0, entries % 32, tokens + " x " + topK + ": " + entries + " entries per chunk");
                // the kernels cover the device count (<= capacity) with ceil(n / entries) chunks: never more than sized
                assertTrue((n + entries - 1) / entries <= chunks, tokens + " x " + topK + ": " + entries + " x " + chunks + " < " + n);
                assertTrue(chunks >= previous, "chunk count must not fall as the capacity grows: " + tokens + " x " + topK);
                previous = chunks;
            }
        }
    }

    @Test
    void largeLaunchesUseTheMostChunksSmallOnesChunksOfAtMost256Entries() {
        assertEquals(128, MoeDispatch.chunks(4096, 8));
        assertEquals(256, MoeDispatch.chunkEntries(4096, 8));
        assertEquals(128, MoeDispatch.chunks(32768, 8));
        assertEquals(2048, MoeDispatch.chunkEntries(32768, 8));
        assertEquals(16, MoeDispatch.chunks(512, 8));
        assertEquals(1, MoeDispatch.chunks(7, 2));
        assertEquals(32, MoeDispatch.chunkEntries(7, 2));
    }
}
