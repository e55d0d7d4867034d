package dev.sparkmoe.kernels;

import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.model.ModelFamily;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.model.ScoringFunction;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Launch sizes of the small-batch kernels (moe_decode.cu) for every preset and the largest layer the engine accepts. */
class MoeDecodeSizesTest {
    /** Shared memory of an H100/H200 SM and the most one block may use (bytes). */
    static final int SM_SMEM = 228 * 1024, BLOCK_SMEM_MAX = 227 * 1024;
    /** Static shared memory of the route kernel (plan arrays, chosen and selected experts; ptxas: 14352 bytes at tile 32). */
    static final int ROUTE_STATIC_SMEM = 14352;

    static List<MoeConfig> configs() {
        List<MoeConfig> cs = new ArrayList<>();
        for (String p : SyntheticCheckpoint.PRESETS.keySet()) cs.add(SyntheticCheckpoint.preset(p, 1, DType.BF16));
        // the limits GpuMoeEngine.checkSupported allows: 1024 experts, top-32, 32 groups
        cs.add(new MoeConfig(ModelFamily.DEEPSEEK_V3, 7168, 2048, 1024, 32, 2048, false, ScoringFunction.SIGMOID, 32, 4, true, 2.5f,
                true, 1, Set.of(0), null));
        return cs;
    }

    @Test
    void tokenTilesAreSixteenOrThirtyTwo() {
        assertEquals(16, MoeDecode.tokenTile(1));
        assertEquals(16, MoeDecode.tokenTile(16));
        assertEquals(32, MoeDecode.tokenTile(17));
        assertEquals(32, MoeDecode.tokenTile(MoeDecode.MAX_TOKENS));
        assertThrows(IllegalArgumentException.class, () -> MoeDecode.tokenTile(0));
        assertThrows(IllegalArgumentException.class, () -> MoeDecode.tokenTile(MoeDecode.MAX_TOKENS + 1));
    }

    @Test
    void sharedMemoryFitsTwoGemmCtasPerSmAndOneRouteCta() {
        for (MoeConfig c : configs()) {
            for (int tile : new int[] {16, 32}) {
                int gemm = MoeDecode.gemmSmemBytes(tile, c);
                // the GEMMs are launched with 2 CTAs per SM (1 KB per CTA is reserved by the hardware)
                assertTrue(2 * (gemm + 1024) <= SM_SMEM, c.family() + " tile " + tile + ": GEMM shared memory " + gemm);
                int rows = c.numExperts() + (c.sharedExpertGated() ? 1 : 0);
                int route = MoeDecode.routeSmemBytes(tile, c.numExperts(), rows) + ROUTE_STATIC_SMEM;
                assertTrue(route <= BLOCK_SMEM_MAX, c.family() + " tile " + tile + ": route shared memory " + route);
                // the plan's per-chunk expert counts reuse the top-k scratch: ceil(tile * k / 32) x E ints
                int chunkCounts = (tile * c.topK() + 31) / 32 * c.numExperts() * 4;
                assertTrue(chunkCounts <= MoeDecode.routeSmemBytes(tile, c.numExperts(), rows),
                        c.family() + " tile " + tile + ": chunk counts " + chunkCounts);
            }
        }
    }

    /** Every preset's top-k runs one token per warp at 16 tokens; the largest accepted layer still fits with fewer warps. */
    @Test
    void topkWarpsShrinkOnlyWhereTheScratchWouldNotFit() {
        for (MoeConfig c : configs()) {
            int rows = c.numExperts() + (c.sharedExpertGated() ? 1 : 0);
            int w = MoeDecode.topkWarps(c.numExperts(), rows);
            assertTrue(w >= 1 && w <= MoeDecode.ROUTE_WARPS, c.family() + ": " + w);
            if (c.numExperts() <= 256) assertEquals(MoeDecode.ROUTE_WARPS, w, c.family() + " E=" + c.numExperts());
        }
        assertEquals(12, MoeDecode.topkWarps(1024, 1024));  // 13 KB of scratch per warp
    }

    @Test
    void planAndPartialSizesCoverTheWorstCase() {
        MoeConfig q = SyntheticCheckpoint.preset("qwen3-30b-a3b", 1, DType.F8_E4M3);
        // 16 tokens x top-8 over 128 experts: at most 128 experts used; 32 tokens: still at most E
        assertEquals(128, MoeDecode.maxUsedExperts(16, q));
        assertEquals(128, MoeDecode.maxUsedExperts(32, q));
        MoeConfig m = SyntheticCheckpoint.preset("mixtral-8x7b", 1, DType.BF16);
        assertEquals(8, MoeDecode.maxUsedExperts(16, m));
        // partial sums: one per K chunk of 256, token of the tile and router row
        assertEquals(8L * 16 * 128, MoeDecode.partialDoubles(16, 2048, 128));
        assertEquals(28L * 32 * 257, MoeDecode.partialDoubles(32, 7168, 257));
        // GEMM1 counters: (used experts + shared) x 128-column blocks of the wider intermediate
        MoeConfig d = SyntheticCheckpoint.preset("deepseek-v3", 1, DType.F8_E4M3);
        assertEquals((128 + 1) * (2048 / 128), MoeDecode.gemm1Counters(16, d));
    }
}
