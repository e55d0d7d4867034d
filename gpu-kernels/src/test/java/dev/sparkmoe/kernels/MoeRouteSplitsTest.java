package dev.sparkmoe.kernels;

import org.junit.jupiter.api.Test;

import java.util.List;

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
    void tc3SplitsOnlyToFillOneWave() {
        // 128x128 tiles, one CTA per SM: 4096 DeepSeek tokens = 2 x 32 tiles -> 2 splits (128 CTAs on 132 SMs)
        assertEquals(2, MoeRoute.splits(MoeRoute.Kernel.TC3, 4096, 256, 7168, 132));
        assertEquals(1, MoeRoute.splits(MoeRoute.Kernel.TC3, 8192, 256, 7168, 132));
        assertEquals(1, MoeRoute.splits(MoeRoute.Kernel.TC3, 16384, 256, 7168, 132));
        assertEquals(16, MoeRoute.splits(MoeRoute.Kernel.TC3, 512, 256, 7168, 132));
        assertEquals(28, MoeRoute.splits(MoeRoute.Kernel.TC3, 16, 256, 7168, 132)); // capped at 7168/256
        assertEquals(4, MoeRoute.splits(MoeRoute.Kernel.TC3, 100, 64, 1024, 132));
        assertEquals(1, MoeRoute.splits(MoeRoute.Kernel.TC3, 1500, 32, 256, 132));
        assertEquals(2, MoeRoute.splits(MoeRoute.Kernel.TC3K16, 4096, 256, 7168, 132)); // same tiles as TC3
        // the old entry point is TC2's rule
        assertEquals(MoeRoute.splits(512, 256, 7168, 132), MoeRoute.splits(MoeRoute.Kernel.TC2, 512, 256, 7168, 132));
    }

    @Test
    void partialBufferCoversEverySplitLaunch() {
        for (int cap : new int[] {16, 32, 64, 100, 128, 512, 1024, 2048, 4096, 8192, 16384}) {
            for (int nOut : new int[] {8, 9, 61, 128, 256}) {
                for (MoeRoute.Kernel k : List.of(MoeRoute.Kernel.TC, MoeRoute.Kernel.TC2, MoeRoute.Kernel.TC3, MoeRoute.Kernel.TC3K16)) {
                    for (int hidden : new int[] {256, 1024, 7168}) {
                        int s = MoeRoute.splits(k, cap, nOut, hidden, 132);
                        if (s > 1) assertTrue((long) s * cap * nOut <= MoeRoute.partialDoubles(132), k + " " + cap + " " + nOut + " " + hidden);
                    }
                }
            }
        }
    }

    @Test
    void routerKernelNamesParseAndTheFp64WeightKernelsSayItself() {
        assertEquals(MoeRoute.Kernel.TC3, MoeRoute.Kernel.parse("tc3"));
        assertEquals(MoeRoute.Kernel.TC3K16, MoeRoute.Kernel.parse("TC3k16"));
        assertEquals(MoeRoute.Kernel.TC2, MoeRoute.Kernel.parse("tc2"));
        assertEquals(MoeRoute.Kernel.TC, MoeRoute.Kernel.parse("TC"));
        assertEquals(MoeRoute.Kernel.SIMT, MoeRoute.Kernel.parse("simt"));
        assertEquals(MoeRoute.Kernel.TC2W, MoeRoute.Kernel.parse("tc2w"));
        assertEquals(MoeRoute.Kernel.TC2O, MoeRoute.Kernel.parse("TC2O"));
        assertTrue(MoeRoute.Kernel.TC2.wantsF64Weights() && MoeRoute.Kernel.TC3.wantsF64Weights()
                && MoeRoute.Kernel.TC3K16.wantsF64Weights() && MoeRoute.Kernel.TC2W.wantsF64Weights()
                && MoeRoute.Kernel.TC2O.wantsF64Weights());
        assertTrue(!MoeRoute.Kernel.TC.wantsF64Weights() && !MoeRoute.Kernel.SIMT.wantsF64Weights());
        // the certified router: auto picks it (certwg where the hidden size allows) for routers bf16 holds exactly, tc2w
        // otherwise; its fp64 fallback is tc2w's
        assertEquals(MoeRoute.Kernel.CERT, MoeRoute.Kernel.parse("cert"));
        assertEquals(MoeRoute.Kernel.AUTO, MoeRoute.Kernel.parse("Auto"));
        assertEquals(MoeRoute.Kernel.CERTWG, MoeRoute.Kernel.AUTO.resolve(true, 7168));
        assertEquals(MoeRoute.Kernel.CERT, MoeRoute.Kernel.AUTO.resolve(true, 7168 + 32));
        assertEquals(MoeRoute.Kernel.TC2W, MoeRoute.Kernel.AUTO.resolve(false, 7168));
        assertEquals(MoeRoute.Kernel.TC3, MoeRoute.Kernel.TC3.resolve(true, 7168));
        assertEquals(MoeRoute.Kernel.CERT, MoeRoute.Kernel.CERT.resolve(true, 7168));
        assertTrue(MoeRoute.Kernel.CERT.wantsF64Weights());
        // 3 stages of fp32 x (64 rows x 40) and bf16 router rows (64 x 40): three CTAs per SM
        assertEquals(46080, MoeRoute.CERT_SMEM_BYTES);
        // the bound covers four chained MMAs' worst case, (72 + 2.25) x 2^-23 of ||x|| ||w||
        assertTrue(MoeRoute.CERT_BOUND_SCALE >= 74.25 * Math.pow(2, -23), "bound " + MoeRoute.CERT_BOUND_SCALE);
        assertTrue(MoeRoute.certifiedSquareFloats(4096, 7168) >= (long) MoeRoute.splits(MoeRoute.Kernel.TC2, 4096, 256, 7168, 132) * 4096);
        assertTrue(MoeRoute.certifiedSquareFloats(16, 7168) >= (long) MoeRoute.splits(MoeRoute.Kernel.TC2, 16, 256, 7168, 132) * 16);
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> MoeRoute.Kernel.parse("dmma"));
        assertTrue(e.getMessage().contains("certwg, simt, tc, tc2, tc2w, tc2o, tc3 or tc3k16") && e.getMessage().contains("dmma"), e.getMessage());
        // shared memory of tc2: 3 stages of fp64 w and fp32 x tiles plus one fp64 x tile, 64 rows x 36 each
        assertEquals(101376, MoeRoute.TC2_SMEM_BYTES);
        // tc2o: 2 stages, so three CTAs (plus 1 KiB reserved each) fit the 228 KiB of an SM
        assertEquals(73728, MoeRoute.TC2O_SMEM_BYTES);
        assertTrue(3 * (MoeRoute.TC2O_SMEM_BYTES + 1024) <= 228 * 1024);
        // tc3: 3 stages of fp64 w (128 x 32), 2 widened fp64 x (128 x 32), 2 stages of fp32 x (128 x 36); Hopper's
        // per-block limit is 227 KiB
        assertEquals(200704, MoeRoute.TC3_SMEM_BYTES);
        assertTrue(MoeRoute.TC3_SMEM_BYTES <= 227 * 1024);
    }

    @Test
    void theWarpgroupCertifiedRouterSplitsKInStagesOfSixtyFourWithinOneWave() {
        assertEquals(MoeRoute.Kernel.CERTWG, MoeRoute.Kernel.parse("CertWG"));
        assertTrue(MoeRoute.Kernel.CERTWG.certified() && MoeRoute.Kernel.CERT.certified() && !MoeRoute.Kernel.TC2W.certified()
                && !MoeRoute.Kernel.AUTO.certified());
        assertTrue(MoeRoute.Kernel.CERTWG.wantsF64Weights(), "its fp64 fallback reads tc2w's fp64 router copy");
        // 4 stages of three 8 KiB x planes, a 16 KiB router tile and a 16 KiB fp32 x tile, alignment slack and barriers:
        // within Hopper's 227 KiB per block
        assertEquals(230464, MoeRoute.CERTWG_SMEM_BYTES);
        assertTrue(MoeRoute.CERTWG_SMEM_BYTES <= 227 * 1024);
        // DeepSeek-V3 at 4096 tokens: 2 x 64 tiles of 64 tokens x 128 experts fill 132 SMs once - no split
        assertEquals(1, MoeRoute.certifiedSplits(MoeRoute.Kernel.CERTWG, 4096, 256, 7168, 132));
        // 512 tokens: 16 tiles, 8 splits of 896 (14 stages of 64)
        assertEquals(8, MoeRoute.certifiedSplits(MoeRoute.Kernel.CERTWG, 512, 256, 7168, 132));
        // CERT keeps TC2's splits
        assertEquals(MoeRoute.splits(MoeRoute.Kernel.TC2, 512, 256, 7168, 132),
                MoeRoute.certifiedSplits(MoeRoute.Kernel.CERT, 512, 256, 7168, 132));
        for (int cap : new int[] {1, 17, 100, 512, 1000, 4096, 32768}) {
            for (int nOut : new int[] {8, 9, 16, 128, 256, 257}) {
                for (int hidden : new int[] {256, 1024, 2048, 4096, 7168}) {
                    int s = MoeRoute.certifiedSplits(MoeRoute.Kernel.CERTWG, cap, nOut, hidden, 132);
                    String at = cap + " tokens, " + nOut + " outputs, hidden " + hidden + ": " + s + " splits";
                    // every split non-empty (the kernel's K range is s x a multiple of 64 that covers hidden)
                    int kps = ((hidden + s - 1) / s + 63) / 64 * 64;
                    assertTrue((long) (s - 1) * kps < hidden && (long) s * kps >= hidden, at);
                    assertTrue(MoeRoute.certifiedSquareFloats(cap, hidden) >= (long) s * cap, at);
                    if (s > 1) assertTrue((long) s * cap * nOut <= MoeRoute.partialDoubles(132), at);
                }
            }
        }
    }
}
