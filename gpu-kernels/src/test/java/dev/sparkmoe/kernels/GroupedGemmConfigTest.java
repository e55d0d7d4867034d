package dev.sparkmoe.kernels;

import dev.sparkmoe.kernels.GroupedGemmConfig.Gemm;
import dev.sparkmoe.kernels.GroupedGemmConfig.Operand;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

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

    /** Promotion every 32 picks the _p32 entry points (the 64 x 256 tile) for FP8 only; each is declared in grouped_gemm.cu. */
    @Test
    void fp8PromotionEvery32UsesThePromote32Kernels() throws java.io.IOException {
        String cu = java.nio.file.Files.readString(java.nio.file.Path.of("src/main/cuda/grouped_gemm.cu"));
        for (Gemm g : Gemm.values()) {
            GroupedGemmConfig fast = GroupedGemmConfig.choose(g, Operand.FP8, 64, 2048, 7168, 132);
            GroupedGemmConfig p32 = GroupedGemmConfig.choose(g, Operand.FP8, 64, 2048, 7168, 132, 32);
            assertEquals(GroupedGemmConfig.baseName(g, Operand.FP8) + "_p32", p32.kernel());
            assertEquals(64, p32.blockM());
            assertEquals(1024 + 5 * (64 * 128 + 256 * 128 + 512) + 80 + 1024 + 16384, p32.dynamicSmemBytes(), "the 64-row tile");
            assertEquals(132, p32.gridX(), "64 row blocks = 128 units per column tile: a full persistent grid");
            assertEquals(fast.gridX(), p32.gridX());
            assertTrue(cu.contains("(" + p32.kernel() + ","), p32.kernel() + " is not an entry point of grouped_gemm.cu");
            assertEquals(GroupedGemmConfig.choose(g, Operand.BF16, 64, 2048, 7168, 132),
                    GroupedGemmConfig.choose(g, Operand.BF16, 64, 2048, 7168, 132, 32), "BF16 has no promotion");
        }
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 64, 128 * 3, 2048, 132, 32));
        assertTrue(e.getMessage().contains("N = 384"), e.getMessage());
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> GroupedGemmConfig.choose(Gemm.GEMM1_SWIGLU, Operand.FP8, 64, 2048, 7168, 132, 64));
    }

    /** The gathering GEMM1 is the production FP8 GEMM1 tile + "g": same launch shape, an entry point of grouped_gemm.cu. */
    @Test
    void gatheredGemm1IsTheProductionTileWithTheGatheringProducer() throws IOException {
        String cu = Files.readString(Path.of("src/main/cuda/grouped_gemm.cu"));
        for (int blocks : new int[] {1, 64, 4096}) {
            GroupedGemmConfig prod = GroupedGemmConfig.choose(Gemm.GEMM1_SWIGLU, Operand.FP8, blocks, 2048, 7168, 132);
            GroupedGemmConfig g = GroupedGemmConfig.gatheredFp8Gemm1(blocks, 2048, 7168, 132, false);
            assertEquals("grouped_gemm1_swiglu_fp8_m128usu2g", g.kernel());
            assertEquals(new GroupedGemmConfig(prod.kernel() + "g", prod.blockM(), prod.blockN(), prod.blockK(), prod.stages(),
                    prod.threads(), prod.dynamicSmemBytes(), prod.gridX(), prod.gridY()), g);
            assertTrue(cu.contains("MOE_GEMM1_FP8_GATHER(" + g.kernel() + ","), g.kernel() + " is not an entry point of grouped_gemm.cu");
        }
        assertThrows(IllegalArgumentException.class, () -> GroupedGemmConfig.gatheredFp8Gemm1(64, 2000, 7168, 132, false));
        assertThrows(IllegalArgumentException.class, () -> GroupedGemmConfig.gatheredFp8Gemm1(0, 2048, 7168, 132, false));
    }

    @Test
    void dynamicUnitsPickTheProductionTilesClaimingForms() throws java.io.IOException {
        String cu = java.nio.file.Files.readString(java.nio.file.Path.of("src/main/cuda/grouped_gemm.cu"));
        for (Gemm g : Gemm.values()) {
            for (Operand o : Operand.values()) {
                GroupedGemmConfig fixed = GroupedGemmConfig.choose(g, o, 64, 64, 2048, 7168, 132, 128, false);
                GroupedGemmConfig dyn = GroupedGemmConfig.choose(g, o, 64, 64, 2048, 7168, 132, 128, true);
                assertTrue(dyn.dynamicUnits() && !fixed.dynamicUnits(), dyn.toString());
                assertTrue(dyn.kernel().startsWith(fixed.kernel()) && dyn.kernel().endsWith("d"), dyn.toString());
                assertEquals(fixed.dynamicSmemBytes() + GroupedGemmConfig.UNIT_ID_BYTES, dyn.dynamicSmemBytes(), "unit ids after the tile's own");
                assertEquals(fixed.gridX(), dyn.gridX());
                assertEquals(fixed.blockM(), dyn.blockM());
                assertTrue(cu.contains("(" + dyn.kernel() + ","), dyn.kernel() + " is not an entry point of grouped_gemm.cu");
                assertTrue(dyn.toString().endsWith("dynamic units"), dyn.toString());
            }
        }
        GroupedGemmConfig g = GroupedGemmConfig.gatheredFp8Gemm1(64, 2048, 7168, 132, false);
        GroupedGemmConfig gd = GroupedGemmConfig.gatheredFp8Gemm1(64, 2048, 7168, 132, true);
        assertEquals(g.kernel() + "d", gd.kernel());
        assertTrue(gd.dynamicUnits() && !g.dynamicUnits());
        assertEquals(g.dynamicSmemBytes() + GroupedGemmConfig.UNIT_ID_BYTES, gd.dynamicSmemBytes());
        assertTrue(cu.contains("MOE_GEMM1_FP8_GATHER(" + gd.kernel() + ","), gd.kernel() + " is not an entry point of grouped_gemm.cu");
        // no claiming form: the N % 256 != 0 fallbacks and promotion every 32 stay static
        assertEquals(GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 64, 0, 384, 2048, 132, 128, false),
                GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 64, 0, 384, 2048, 132, 128, true));
        assertEquals(GroupedGemmConfig.choose(Gemm.GEMM1_SWIGLU, Operand.FP8, 64, 64, 2048, 7168, 132, 32, false),
                GroupedGemmConfig.choose(Gemm.GEMM1_SWIGLU, Operand.FP8, 64, 64, 2048, 7168, 132, 32, true));
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
        assertEquals("grouped_gemm1_swiglu_fp8_m128usu2", g1.kernel());
        assertEquals(128, g1.blockN(), "FP8 re-quantization needs 128 output columns per CTA");
        assertEquals(128, g1.blockM());
        assertEquals(2048 / 128, g1.gridX(), "one 128-row block x 16 column tiles");
        assertEquals(1024 + 4 * (128 * 128 + 256 * 128 + 512) + 64 + 1024 + 2 * 64 * 128, g1.dynamicSmemBytes(),
                "stage ring + barriers + amax exchange + staged e4m3 output (no live-unit table for 128-row tiles)");
        GroupedGemmConfig g2 = GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 4096, 7168, 2048, 132);
        assertEquals(132, g2.gridX());
        assertEquals("grouped_gemm2_fp8_u", g2.kernel());
        assertEquals(64, g2.blockM());
        assertEquals(1024 + 5 * (64 * 128 + 256 * 128 + 512) + 80 + 1024 + 16384, g2.dynamicSmemBytes(),
                "stage ring + barriers + amax exchange + live-unit table");
        assertEquals(256, g2.blockN());
        GroupedGemmConfig odd = GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 4, 128 * 3, 2048, 132);
        assertEquals("grouped_gemm2_fp8_n128", odd.kernel());
        assertEquals(4 * 3, odd.gridX(), "no more CTAs than work units");
        assertEquals(384, g2.threads());
        assertEquals("grouped_gemm2_bf16_n128", GroupedGemmConfig.choose(Gemm.GEMM2, Operand.BF16, 8, 128 * 3, 1024, 132).kernel());
        assertEquals("grouped_gemm2_bf16", GroupedGemmConfig.choose(Gemm.GEMM2, Operand.BF16, 8, 4096, 1024, 132).kernel());
    }

    /** FP8 GEMM2 takes the 128-row tile where at most half of the row blocks may be partial and the work is >= 4 waves. */
    @Test
    void fp8Gemm2TakesThe128RowTileWhereRowBlocksAreMostlyFullAndMany() throws IOException {
        Map<String, KernelTile> kernels = kernelTiles();
        // N = 7168 (28 column tiles), 132 SMs: >= 4 waves from 19 blocks. DeepSeek-V3 (256 experts, top-8): 512 tokens ->
        // 288 worst-case blocks, 256 of them partial; 4096 -> 512 / 256; 16384 -> 1280 / 256; the shared expert at 4096
        // tokens: 32 blocks, 1 partial; every row computed: 0 partial; too few blocks: 18 / 1 or 1 / 1
        int[][] cases = {{288, 256, 0}, {512, 256, 1}, {1280, 256, 1}, {32, 1, 1}, {37, 0, 1}, {19, 1, 1}, {18, 1, 0}, {1, 1, 0}};
        for (int[] c : cases) {
            GroupedGemmConfig g = GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, c[0], c[1], 7168, 2048, 132, 128, false);
            boolean rows128 = c[2] == 1;
            assertEquals(rows128 ? "grouped_gemm2_fp8_m128u" : "grouped_gemm2_fp8_u", g.kernel(), g.toString());
            assertEquals(rows128 ? 128 : 64, g.blockM(), g.toString());
            KernelTile t = kernels.get(g.kernel());
            assertTrue(t != null && t.blockM() == g.blockM() && t.stages() == g.stages(), g + " vs the source's tile " + t);
            assertEquals(Math.min(132, c[0] * (128 / g.blockM()) * (7168 / 256)), g.gridX(), g.toString());
            // with dynamic units GEMM2 keeps the 64-row tile (the 128-row one has no claiming form)
            assertEquals("grouped_gemm2_fp8_ud", GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, c[0], c[1], 7168, 2048, 132, 128, true).kernel());
            // GEMM1, BF16, promotion every 32 and N % 256 != 0 do not depend on it
            assertEquals(GroupedGemmConfig.choose(Gemm.GEMM1_SWIGLU, Operand.FP8, c[0], c[0], 2048, 7168, 132, 128, false),
                    GroupedGemmConfig.choose(Gemm.GEMM1_SWIGLU, Operand.FP8, c[0], c[1], 2048, 7168, 132, 128, false));
            assertEquals("grouped_gemm2_bf16", GroupedGemmConfig.choose(Gemm.GEMM2, Operand.BF16, c[0], c[1], 7168, 2048, 132, 128, false).kernel());
            assertEquals("grouped_gemm2_fp8_p32", GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, c[0], c[1], 7168, 2048, 132, 32, false).kernel());
            assertEquals("grouped_gemm2_fp8_n128", GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, c[0], c[1], 384, 2048, 132, 128, false).kernel());
        }
        // Mixtral FP8 (N 4096 = 16 column tiles): 512 tokens = 16 blocks (1.9 waves): 64-row; 4096 tokens = 72 blocks: 128-row
        assertEquals("grouped_gemm2_fp8_u", GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 16, 8, 4096, 14336, 132, 128, false).kernel());
        assertEquals("grouped_gemm2_fp8_m128u", GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 72, 8, 4096, 14336, 132, 128, false).kernel());
        String cu = Files.readString(Path.of("src/main/cuda/grouped_gemm.cu"));
        assertTrue(cu.contains("(grouped_gemm2_fp8_m128u_ybf16,"), "the layer's bf16-Y form of the 128-row GEMM2");
        assertThrows(IllegalArgumentException.class,
                () -> GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, 8, -1, 7168, 2048, 132, 128, false));
    }

    /** With dynamic units the FP8 GEMM1 keeps the static order for at most 16 groups with at most one in eight partial blocks. */
    @Test
    void fp8Gemm1KeepsTheStaticOrderForFewGroupsOfFullBlocks() {
        // {worst-case row blocks, partial blocks = groups, static?}: Mixtral top-2 (8 experts) at 4096 tokens 72 / 8 and
        // at 32768 520 / 8; DeepSeek-V3 (256 experts) at 4096 tokens 512 / 256, 16384 1280 / 256, 32768 2304 / 256 (the
        // static order measured 3 % slower there); Qwen3 (128 experts) at 32768 tokens 2176 / 128; the shared expert at
        // 4096 tokens 32 / 1; every row computed 5 / 0; 16 or 17 groups of many blocks
        int[][] cases = {{72, 8, 1}, {520, 8, 1}, {512, 256, 0}, {1280, 256, 0}, {2304, 256, 0}, {2176, 128, 0}, {32, 1, 1},
                {5, 0, 1}, {63, 8, 0}, {64, 8, 1}, {1, 1, 0}, {4096, 16, 1}, {4096, 17, 0}};
        for (int[] c : cases) {
            boolean fixed = c[2] == 1;
            GroupedGemmConfig g = GroupedGemmConfig.choose(Gemm.GEMM1_SWIGLU, Operand.FP8, c[0], c[1], 2048, 7168, 132, 128, true);
            GroupedGemmConfig plain = GroupedGemmConfig.choose(Gemm.GEMM1_SWIGLU, Operand.FP8, c[0], c[1], 2048, 7168, 132, 128, false);
            assertEquals(fixed ? "grouped_gemm1_swiglu_fp8_m128usu2" : "grouped_gemm1_swiglu_fp8_m128usu2d", g.kernel(), g.toString());
            assertEquals(!fixed, g.dynamicUnits(), g.toString());
            assertEquals(plain.gridX(), g.gridX());
            assertTrue(!plain.dynamicUnits() && plain.kernel().equals("grouped_gemm1_swiglu_fp8_m128usu2"), plain.toString());
            // BF16 GEMM1 and GEMM2 claim whenever asked (the static BF16 GEMM1 was slower in the Mixtral layer)
            assertEquals("grouped_gemm1_swiglu_bf16_d", GroupedGemmConfig.choose(Gemm.GEMM1_SWIGLU, Operand.BF16, c[0], c[1], 2048, 7168, 132, 128, true).kernel());
            assertEquals("grouped_gemm2_fp8_ud", GroupedGemmConfig.choose(Gemm.GEMM2, Operand.FP8, c[0], c[1], 7168, 2048, 132, 128, true).kernel());
        }
        assertEquals("grouped_gemm1_swiglu_fp8_m128usu2", GroupedGemmConfig.choose(Gemm.GEMM1_SWIGLU, Operand.FP8, 72, 8, 2048, 7168, 132, 128, true).kernel());
        assertEquals(Set.of("grouped_gemm1_swiglu_fp8_m128usu2", "grouped_gemm1_swiglu_fp8_m128usu2d"),
                GroupedGemmConfig.kernels(Gemm.GEMM1_SWIGLU, Operand.FP8, 2048, 7168, 132, 128, true));
        assertEquals(Set.of("grouped_gemm1_swiglu_bf16_d"), GroupedGemmConfig.kernels(Gemm.GEMM1_SWIGLU, Operand.BF16, 2048, 7168, 132, 128, true));
        assertEquals(Set.of("grouped_gemm1_swiglu_fp8_m128usu2"), GroupedGemmConfig.kernels(Gemm.GEMM1_SWIGLU, Operand.FP8, 2048, 7168, 132, 128, false));
    }

    /** The tile template arguments of one entry point, read from grouped_gemm.cu. */
    /** stagedOut: Tile kStagedStore (0 none, 1 the e4m3 GEMM1 output, 2 GEMM2's bf16 Y). */
    private record KernelTile(int blockM, int packedN, int stages, boolean splitN, int cluster, int stagedOut) {
        int stagedBytes() { return stagedOut == 1 ? 2 * 64 * 128 : stagedOut == 2 ? 2 * 64 * (256 * 2 + 16) : 0; }
    }

    /** Entry points of the engine's fatbin: grouped_gemm.cu without its benchmark-only variants (#if MOE_BENCH_VARIANTS). */
    private static Map<String, KernelTile> kernelTiles() throws IOException {
        String src = Files.readString(Path.of("src/main/cuda/grouped_gemm.cu")).replaceAll("(?s)#if MOE_BENCH_VARIANTS\\n.*?#endif", "");
        Map<String, KernelTile> tiles = new HashMap<>();
        Matcher t = Pattern.compile("using (\\w+) =\\s+moe_sched::Tile<(\\d+), (\\d+), (\\d+), (true|false)(?:, (\\d+))?([^>]*)>;").matcher(src);
        while (t.find()) {
            // template argument 14 (index 13): kStagedStore
            String[] args = (t.group(2) + ", " + t.group(3) + ", " + t.group(4) + ", " + t.group(5)
                    + (t.group(6) == null ? "" : ", " + t.group(6)) + t.group(7)).split(",\\s*");
            tiles.put(t.group(1), new KernelTile(Integer.parseInt(t.group(2)), Integer.parseInt(t.group(3)), Integer.parseInt(t.group(4)),
                    Boolean.parseBoolean(t.group(5)), t.group(6) == null ? 1 : Integer.parseInt(t.group(6)),
                    args.length > 13 ? stagedStoreMode(args[13].trim()) : 0));
        }
        Map<String, KernelTile> kernels = new HashMap<>();
        Matcher k = Pattern.compile("(?m)^MOE_GEMM[12]_(?:BF16|FP8)\\((\\w+), (\\w+)(?:, (\\w+))?\\)").matcher(src);
        while (k.find()) {
            KernelTile tile = tiles.get(k.group(2));
            assertTrue(tile != null, "tile alias " + k.group(2) + " of " + k.group(1));
            assertEquals(tile.cluster() > 1, "MOE_CLUSTER2".equals(k.group(3)), k.group(1) + ": cluster attribute vs tile");
            kernels.put(k.group(1), tile);
        }
        assertTrue(kernels.size() >= 6, "entry points found in grouped_gemm.cu: " + kernels.keySet());
        assertTrue(!kernels.containsKey("grouped_gemm1_swiglu_fp8_m128usu2dc"), "benchmark variants are not the engine's: " + kernels.keySet());
        return kernels;
    }

    private static int stagedStoreMode(String arg) {
        return switch (arg) {
            case "true", "1" -> 1;
            case "false", "0" -> 0;
            default -> Integer.parseInt(arg);
        };
    }

    @Test
    void configMirrorsTheKernelSource() throws IOException {
        Map<String, KernelTile> kernels = kernelTiles();
        int[][] shapes = {{4096 / 2, 7168}, {7168, 2048}, {768, 2048}, {14336, 4096}, {128 * 3, 1024}, {2048, 7168}};
        for (Gemm g : Gemm.values()) {
            for (Operand o : Operand.values()) {
                for (int[] nk : shapes) {
                    GroupedGemmConfig c = GroupedGemmConfig.choose(g, o, 37, nk[0], nk[1], 132);
                    KernelTile t = kernels.get(c.kernel());
                    assertTrue(t != null, c + ": no such entry point in grouped_gemm.cu");
                    int packedN = g == Gemm.GEMM1_SWIGLU ? 2 * c.blockN() : c.blockN();
                    assertEquals(t.blockM(), c.blockM(), c.toString());
                    assertEquals(t.packedN(), packedN, c.toString());
                    assertEquals(t.stages(), c.stages(), c.toString());
                    int table = t.blockM() == 64 && t.cluster() == 1 ? 16384 : 0;
                    int staged = t.stagedBytes();
                    assertEquals(1024 + t.stages() * (t.blockM() * 128 + t.packedN() * 128 + 512) + 2 * t.stages() * 8 + 1024 + table + staged,
                            c.dynamicSmemBytes(), "Tile::SMEM_BYTES of " + c);
                    assertEquals(0, c.gridX() % t.cluster(), c.toString());
                    assertEquals(0, (g == Gemm.GEMM1_SWIGLU ? 2 * nk[0] : nk[0]) % t.packedN(), c + " needs whole tiles");
                }
            }
        }
    }

    /** kernels(...) lists exactly what choose(...) returns over the row-block counts (the layer's bf16-Y check at open). */
    @Test
    void kernelsListsEveryEntryPointChooseCanReturn() {
        assertEquals(Set.of("grouped_gemm2_fp8_m128u", "grouped_gemm2_fp8_u"), GroupedGemmConfig.kernels(Gemm.GEMM2, Operand.FP8, 7168, 2048, 132, 128, false));
        assertEquals(Set.of("grouped_gemm2_fp8_ud"), GroupedGemmConfig.kernels(Gemm.GEMM2, Operand.FP8, 7168, 2048, 132, 128, true));
        assertEquals(Set.of("grouped_gemm2_fp8_p32"), GroupedGemmConfig.kernels(Gemm.GEMM2, Operand.FP8, 7168, 2048, 132, 32, false));
        int[][] shapes = {{7168, 2048}, {2048, 768}, {4096, 14336}, {128 * 3, 1024}, {2048, 7168}};
        for (Gemm g : Gemm.values()) {
            for (Operand o : Operand.values()) {
                for (int interval : new int[] {128, 32}) {
                    for (boolean dynamic : new boolean[] {false, true}) {
                        for (int[] nk : shapes) {
                            if (interval == 32 && o == Operand.FP8 && g == Gemm.GEMM2 && nk[0] % 256 != 0) continue;  // no such kernel
                            Set<String> listed = GroupedGemmConfig.kernels(g, o, nk[0], nk[1], 132, interval, dynamic);
                            Set<String> chosen = new TreeSet<>();
                            for (int blocks : new int[] {1, 2, 7, 37, 256, 1 << 12, 1 << 20}) {
                                for (int partial : new int[] {0, 1, blocks / 2, blocks}) {
                                    chosen.add(GroupedGemmConfig.choose(g, o, blocks, partial, nk[0], nk[1], 132, interval, dynamic).kernel());
                                }
                            }
                            assertEquals(chosen, listed, g + " " + o + " N=" + nk[0] + " K=" + nk[1] + " interval " + interval + " dynamic " + dynamic);
                        }
                    }
                }
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
