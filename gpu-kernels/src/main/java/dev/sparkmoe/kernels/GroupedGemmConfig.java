package dev.sparkmoe.kernels;

import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/**
 * How to launch one grouped GEMM of grouped_gemm.cu: which entry point, its tile, threads, dynamic shared memory
 * and grid. Chosen deterministically from the GEMM, the operand type, the worst-case number of 128-row blocks, N, K
 * and the device's multiprocessor count; the launcher (GroupedGemm) only reads it. The grid is sized for the worst
 * case: the kernels read the real number of row blocks from device memory and skip or stride past the rest, so the
 * same config serves a whole CUDA graph bucket.
 *
 * @param kernel       the extern "C" entry point
 * @param blockM       rows of the M-grouped layout per CTA tile
 * @param blockN       output columns per CTA tile (GEMM1: SwiGLU output columns, i.e. half the packed W1 rows)
 * @param blockK       reduction elements per pipeline stage
 * @param stages       shared-memory pipeline stages (0 for the SIMT reference kernels)
 * @param threads      threads per CTA
 * @param dynamicSmemBytes dynamic shared memory per CTA
 * @param gridX        CTAs along x (a multiple of the cluster size of kernels built with __cluster_dims__; the
 *                     production kernels use none)
 * @param gridY        CTAs along y
 * @param dynamicUnits the kernel claims its work units at run time (Tile::kDynamic): its entry point takes one more
 *                     argument, a zeroed work-counter pair ({@link WorkCounters})
 */
public record GroupedGemmConfig(String kernel, int blockM, int blockN, int blockK, int stages, int threads,
                                int dynamicSmemBytes, int gridX, int gridY, boolean dynamicUnits) {

    /** A kernel with the static unit order. */
    public GroupedGemmConfig(String kernel, int blockM, int blockN, int blockK, int stages, int threads, int dynamicSmemBytes,
                             int gridX, int gridY) {
        this(kernel, blockM, blockN, blockK, stages, threads, dynamicSmemBytes, gridX, gridY, false);
    }

    /** Rows per block of the M-grouped contiguous layout (each expert's rows start at a multiple of it). */
    public static final int ROW_BLOCK = 128;
    /** K and N granularity the kernels require (the FP8 scale block; every supported model's H and I). */
    public static final int GRANULE = 128;

    /** Which GEMM of the MoE pipeline. */
    public enum Gemm {
        /** gate and up projections with the SwiGLU (and for FP8 re-quantization) epilogue; N = I, K = H. */
        GEMM1_SWIGLU("grouped_gemm1_swiglu"),
        /** the down projection with the routing-weight epilogue; N = H, K = I. */
        GEMM2("grouped_gemm2");

        private final String prefix;

        Gemm(String prefix) { this.prefix = prefix; }
    }

    /** Operand type of the GEMM (the weights' device format, see {@link WeightPacking.Format}). */
    public enum Operand {
        BF16("bf16"), FP8("fp8");

        private final String suffix;

        Operand(String suffix) { this.suffix = suffix; }
    }

    /**
     * The production kernel's launch for this problem.
     *
     * @param maxRowBlocks worst-case number of used 128-row blocks (sizes the grid; the real count is on the device)
     * @param n            output columns (GEMM1: I; GEMM2: H), a multiple of 128
     * @param k            reduction length (GEMM1: H; GEMM2: I), a multiple of 128
     * @param smCount      multiprocessors of the device
     */
    public static GroupedGemmConfig choose(Gemm gemm, Operand operand, int maxRowBlocks, int n, int k, int smCount) {
        return choose(gemm, operand, maxRowBlocks, n, k, smCount, 128);
    }

    /**
     * As {@link #choose(Gemm, Operand, int, int, int, int)} with the FP8 promotion interval (K per promotion into the
     * fp32 result): 128 (production) or 32 (the {@code _p32} kernels: the same tiles, promoted after every wgmma).
     */
    public static GroupedGemmConfig choose(Gemm gemm, Operand operand, int maxRowBlocks, int n, int k, int smCount,
                                           int fp8PromotionInterval) {
        return choose(gemm, operand, maxRowBlocks, maxRowBlocks, n, k, smCount, fp8PromotionInterval, false);
    }

    /**
     * As above; {@code dynamicUnits}: the production tile's form that claims its units at run time where one exists
     * (FP8 GEMM1 {@code _m128usu2d}, FP8 GEMM2 {@code _ud}, BF16 {@code _d}; not the {@code _n128} and promote-32
     * kernels), so the units sharing a weight tile keep running together (grouped_gemm_schedule.cuh, Tile::kDynamic).
     * {@code partialBlocks}: how many of the worst case's row blocks may be partly padding (one per group: the experts
     * for the routed GEMMs, 1 for the shared expert, 0 when every row is computed); the FP8 GEMM2 takes its 128-row
     * tile where at most half of them may be and the work is large ({@link #rows128Gemm2}), and the FP8 GEMM1 keeps the
     * static unit order even with {@code dynamicUnits} for a few groups of mostly full blocks ({@link #staticGemm1}).
     */
    public static GroupedGemmConfig choose(Gemm gemm, Operand operand, int maxRowBlocks, int partialBlocks, int n, int k,
                                           int smCount, int fp8PromotionInterval, boolean dynamicUnits) {
        if (partialBlocks < 0) throw new IllegalArgumentException("grouped GEMM " + gemm + ": partialBlocks must be >= 0, got " + partialBlocks);
        // the 128-row GEMM2 has no claiming form: with dynamic units GEMM2 keeps the 64-row tile
        boolean rows128Gemm2 = !dynamicUnits && rows128Gemm2(maxRowBlocks, partialBlocks, n, smCount);
        boolean claim = dynamicUnits && !(gemm == Gemm.GEMM1_SWIGLU && operand == Operand.FP8 && staticGemm1(maxRowBlocks, partialBlocks));
        return withUnitOrder(chooseStatic(gemm, operand, maxRowBlocks, n, k, smCount, fp8PromotionInterval, rows128Gemm2), claim);
    }

    /**
     * Every entry point {@link #choose} can return for this GEMM whatever the row-block counts (the choices they drive
     * are {@link #rows128Gemm2} and {@link #staticGemm1}), so that a caller can look them all up at open.
     */
    public static Set<String> kernels(Gemm gemm, Operand operand, int n, int k, int smCount, int fp8PromotionInterval,
                                      boolean dynamicUnits) {
        Set<String> names = new TreeSet<>();
        for (boolean rows128Gemm2 : dynamicUnits ? new boolean[] {false} : new boolean[] {false, true}) {
            GroupedGemmConfig c = chooseStatic(gemm, operand, 1, n, k, smCount, fp8PromotionInterval, rows128Gemm2);
            names.add(withUnitOrder(c, dynamicUnits).kernel);
            if (dynamicUnits && gemm == Gemm.GEMM1_SWIGLU && operand == Operand.FP8) names.add(c.kernel);  // staticGemm1
        }
        return names;
    }

    /**
     * Whether the FP8 GEMM1 runs its static unit order ({@code _m128usu2}: each CTA steps through the units by the grid
     * stride and looks its next one up while the current one's first wgmma group computes) even where dynamic units are
     * asked for: a launch of at most 16 groups (experts; the layout's partial blocks are one per group) of which at most
     * one in eight of the worst case's {@code maxRowBlocks} row blocks may be partial. Its units are then nearly all of one
     * length, so the CTAs stay in step without claiming, and the few groups' weight tiles are shared by many row blocks
     * wherever the CTAs are. H200, session 17 (docs/kernel-notes.md v19): beside DeepGEMM on the full-block gate+up
     * shapes the static tile is 3..4.5 % faster than the claiming one (Mixtral 1156-1198 vs 1119-1158 TFLOPS); in the
     * layer, Mixtral FP8 (8 experts) at 32768 tokens 1-2 % less device time, at 4096 and 8192 within the noise; with 256
     * experts (DeepSeek-V3 at 32768 tokens, 2304 blocks of which 256 partial) the static order was 3 % SLOWER, hence the
     * group bound; with many partial blocks (DeepSeek-V3 at 4096 tokens) the claimed order is far ahead (2.25 vs 2.95 ms on
     * its gate+up rows). Not for BF16: its static tile, 1.3 % faster alone on Mixtral's gate+up, made the Mixtral BF16
     * layer 4-7 % SLOWER (call h).
     */
    static boolean staticGemm1(int maxRowBlocks, int partialBlocks) {
        return partialBlocks <= 16 && 8L * partialBlocks <= maxRowBlocks;
    }

    /** {@code c}, or with {@code dynamicUnits} its form that claims its units at run time where one exists. */
    private static GroupedGemmConfig withUnitOrder(GroupedGemmConfig c, boolean dynamicUnits) {
        String dynamic = DYNAMIC_FORMS.get(c.kernel);
        return dynamicUnits && dynamic != null ? c.claimingUnits(dynamic) : c;
    }

    /**
     * Whether the FP8 GEMM2 runs its 128-row tile {@code _m128u} (warpgroups on the 64-row halves, each on the whole
     * 256-column weight tile: 40 % fewer L2->SM bytes per FLOP than the 64-row tile): at most half of the worst case's
     * {@code maxRowBlocks} row blocks may be partial (a 128-row unit with <= 64 real rows idles its second warpgroup)
     * and the 128-row units make at least four waves of the {@code smCount} multiprocessors (the 64-row tile's units are
     * half as large, so small problems spread better). H200, session 8, bf16 Y as the layer stores it: DeepSeek-V3 down
     * at 16384 tokens 4.10 vs 4.66 ms (layer 16.20-16.23 vs 16.54-16.57 ms), at 4096 tokens 1.468 vs 1.460 ms (layer
     * unchanged), Mixtral FP8 layer at 4096 tokens 2.681 vs 2.726 ms and Qwen3 0.669 vs 0.695 ms, the 32 x 512 down
     * shape 1050-1078 vs 954-975 TFLOPS; Mixtral at 512 tokens (16 blocks x 16 column tiles = 1.9 waves) was 4.5 %
     * slower with the 128-row tile, hence the wave bound.
     */
    static boolean rows128Gemm2(int maxRowBlocks, int partialBlocks, int n, int smCount) {
        return 2L * partialBlocks <= maxRowBlocks && (long) maxRowBlocks * (n / 256) >= 4L * smCount;
    }

    /** This launch as the entry point {@code kernel}, its Tile::kDynamic form: the same tile, plus the unit slots. */
    private GroupedGemmConfig claimingUnits(String kernel) {
        return new GroupedGemmConfig(kernel, blockM, blockN, blockK, stages, threads, dynamicSmemBytes + UNIT_ID_BYTES, gridX, gridY, true);
    }

    /** The production entry points that have a dynamic-unit form (grouped_gemm.cu), and that form's name. */
    private static final java.util.Map<String, String> DYNAMIC_FORMS = java.util.Map.of(
            "grouped_gemm1_swiglu_bf16", "grouped_gemm1_swiglu_bf16_d",
            "grouped_gemm2_bf16", "grouped_gemm2_bf16_d",
            "grouped_gemm1_swiglu_fp8_m128usu2", "grouped_gemm1_swiglu_fp8_m128usu2d",
            "grouped_gemm2_fp8_u", "grouped_gemm2_fp8_ud");

    /** Shared memory of the decoded units a dynamic-unit kernel's producer hands to its consumers (Tile::UNIT_ID_BYTES: 16 stages x 8 words). */
    static final int UNIT_ID_BYTES = 16 * 8 * 4;

    private static GroupedGemmConfig chooseStatic(Gemm gemm, Operand operand, int maxRowBlocks, int n, int k, int smCount,
                                                  int fp8PromotionInterval, boolean rows128Gemm2) {
        check(gemm, operand, maxRowBlocks, n, k, smCount);
        if (fp8PromotionInterval != 128 && fp8PromotionInterval != 32) {
            throw new IllegalArgumentException("FP8 promotion interval must be 128 or 32, got " + fp8PromotionInterval);
        }
        if (operand == Operand.FP8 && fp8PromotionInterval == 32) {
            if (gemm == Gemm.GEMM2 && n % 256 != 0) {
                throw new IllegalArgumentException("FP8 promotion every 32 has no kernel for GEMM2 with N = " + n
                        + " (needs a multiple of 256: the hidden size)");
            }
            GroupedGemmConfig c = fp8Rows64(gemm, maxRowBlocks, n, smCount);
            return new GroupedGemmConfig(c.kernel() + "_p32", c.blockM(), c.blockN(), c.blockK(), c.stages(), c.threads(),
                    c.dynamicSmemBytes(), c.gridX(), c.gridY());
        }
        String name = baseName(gemm, operand);
        if (operand == Operand.BF16) {
            return gemm == Gemm.GEMM1_SWIGLU || n % 256 == 0
                    ? persistent(name, 128, 256, 64, 4, 1, maxRowBlocks, gemm == Gemm.GEMM1_SWIGLU ? 2 * n : n, smCount)
                    : persistent(name + "_n128", 128, 128, 64, 6, 1, maxRowBlocks, n, smCount);
        }
        if (gemm == Gemm.GEMM2) {
            // mostly full row blocks: the 128-row tile in its v5 form _m128u (rows128Gemm2); else the 64-row tile
            // (two warpgroups on the two 128-row halves of the weight tile, promotion overlapped, live-unit padding
            // skip; docs/kernel-notes.md v4.1) in its v5 form _u (warp-uniform descriptor arithmetic, v5)
            if (n % 256 != 0) return persistent(name + "_n128", 128, 128, 128, 6, 1, maxRowBlocks, n, smCount);
            // (3 stages: 1.5-2.4 % faster than 4 on the down shape and the layer's, session 14, kernel-notes v11)
            if (rows128Gemm2) return persistent(name + "_m128u", 128, 256, 128, 3, 1, maxRowBlocks, n, smCount);
            GroupedGemmConfig c = fp8Rows64(gemm, maxRowBlocks, n, smCount);
            return new GroupedGemmConfig(c.kernel() + "_u", c.blockM(), c.blockN(), c.blockK(), c.stages(), c.threads(),
                    c.dynamicSmemBytes(), c.gridX(), c.gridY());
        }
        // GEMM1 (one CTA owns 128 output columns = 256 interleaved gate/up rows, one re-quantization block): the
        // 128-row tile (warpgroups on the 64-row halves, each running its 256 packed rows as two wgmma halves), 40 %
        // fewer L2 bytes per FLOP than the 64-row tile (docs/kernel-notes.md v4.1), in its v5 form _m128usu2:
        // warp-uniform descriptor arithmetic, the e4m3 output staged in shared memory with one bulk store per
        // warpgroup, the K-block loop unrolled by 2 (docs/kernel-notes.md v5). The 64-row tile is ~35 % slower for
        // GEMM1 inside the DeepSeek-V3 layer (session-4 call 3), although not in the standalone layer-shape bench.
        return persistent(name + "_m128usu2", 128, 256, 128, 4, 1, maxRowBlocks, 2 * n, smCount, STAGED_OUT_BYTES);
    }

    /** Suffix of the GEMM1 entry point that gathers its A rows ({@link #gatheredFp8Gemm1}). */
    static final String GATHER_SUFFIX = "g";

    /**
     * The FP8 GEMM1 that gathers its A rows itself from the activations quantized once per token through a
     * slot -> token map ({@code sparkmoe.gpu.gatherRows}, docs/kernel-notes.md v6): the production tile
     * ({@code _m128usu2}) with the gathering producer, same launch shape and shared memory. Promotion every 128 only.
     * {@code dynamicUnits}: its form that claims its units at run time ({@code _m128usu2gd}, Tile::kDynamic).
     */
    public static GroupedGemmConfig gatheredFp8Gemm1(int maxRowBlocks, int n, int k, int smCount, boolean dynamicUnits) {
        GroupedGemmConfig c = choose(Gemm.GEMM1_SWIGLU, Operand.FP8, maxRowBlocks, n, k, smCount);
        GroupedGemmConfig g = new GroupedGemmConfig(c.kernel() + GATHER_SUFFIX, c.blockM(), c.blockN(), c.blockK(), c.stages(), c.threads(),
                c.dynamicSmemBytes(), c.gridX(), c.gridY());
        return dynamicUnits ? g.claimingUnits(g.kernel() + "d") : g;
    }

    /** Shared memory of the staged e4m3 output of the {@code _m128us*} GEMM1 tiles (Tile::OUT_STAGE_BYTES: 2 x 64 x 128). */
    static final int STAGED_OUT_BYTES = 2 * 64 * 128;

    /**
     * The FP8 64 x 256 tile (two warpgroups on the two 128-row halves of the weight tile, promotion overlapped; the
     * session-2 production kernel and the tile of the {@code _p32} kernels). GEMM2 needs N % 256 == 0.
     */
    private static GroupedGemmConfig fp8Rows64(Gemm gemm, int maxRowBlocks, int n, int smCount) {
        return persistent(baseName(gemm, Operand.FP8), 64, 256, 128, 5, 1, maxRowBlocks, gemm == Gemm.GEMM1_SWIGLU ? 2 * n : n, smCount);
    }

    /** Threads of the fast kernels: two consumer warpgroups and one producer warpgroup. */
    public static final int FAST_THREADS = 384;

    /**
     * A persistent launch of the wgmma kernels (grouped_gemm_schedule.cuh's Tile, mirrored here).
     *
     * @param packedN weight rows per CTA tile (GEMM1: gate and up interleaved, twice the output columns)
     * @param weightRows weight rows of one expert (GEMM1: 2N)
     */
    private static GroupedGemmConfig persistent(String kernel, int blockM, int packedN, int blockK, int stages, int cluster,
                                                int maxRowBlocks, int weightRows, int smCount) {
        return persistent(kernel, blockM, packedN, blockK, stages, cluster, maxRowBlocks, weightRows, smCount, 0);
    }

    /** As above, with {@code stagedOutBytes} of shared memory for an output staged before a bulk store. */
    private static GroupedGemmConfig persistent(String kernel, int blockM, int packedN, int blockK, int stages, int cluster,
                                                int maxRowBlocks, int weightRows, int smCount, int stagedOutBytes) {
        if (weightRows % packedN != 0) throw new IllegalStateException(kernel + ": " + weightRows + " weight rows not a multiple of " + packedN);
        long units = (long) maxRowBlocks * (ROW_BLOCK / blockM) * (weightRows / packedN);
        int smem = smemBytes(blockM, packedN, stages, cluster) + stagedOutBytes;
        int outputN = kernel.startsWith(Gemm.GEMM1_SWIGLU.prefix) ? packedN / 2 : packedN;
        // kernels compiled with __cluster_dims__(2,1,1) launch whole clusters: the grid must be a multiple of it
        int grid = (int) Math.max(cluster, Math.min(smCount, units) / cluster * cluster);
        return new GroupedGemmConfig(kernel, blockM, outputN, blockK, stages, FAST_THREADS, smem, grid, 1);
    }

    /** Shared memory of the live-unit table of 64-row tiles without clusters (padding skip; Tile::LIVE_TABLE_BYTES). */
    static final int LIVE_TABLE_BYTES = 16384;

    /**
     * Tile::SMEM_BYTES without the staged output: base alignment slack + the stage ring (A, B, FP8 A scales) + mbarriers
     * + the FP8 row-amax exchange + (64-row tiles without clusters) the live-unit table.
     */
    static int smemBytes(int blockM, int packedN, int stages, int cluster) {
        int table = blockM == 64 && cluster == 1 ? LIVE_TABLE_BYTES : 0;
        return 1024 + stages * (blockM * 128 + packedN * 128 + 512) + 2 * stages * 8 + 1024 + table;
    }

    /** The SIMT reference kernel (the *_ref entry points): slow, simple, for checks. */
    public static GroupedGemmConfig reference(Gemm gemm, Operand operand, int maxRowBlocks, int n, int k) {
        check(gemm, operand, maxRowBlocks, n, k, 1);
        return new GroupedGemmConfig(baseName(gemm, operand) + "_ref", ROW_BLOCK, 128, k, 0, 128, 0, n / 128, maxRowBlocks);
    }

    static String baseName(Gemm gemm, Operand operand) { return gemm.prefix + "_" + operand.suffix; }

    private static void check(Gemm gemm, Operand operand, int maxRowBlocks, int n, int k, int smCount) {
        if (gemm == null || operand == null) throw new IllegalArgumentException("grouped GEMM: gemm and operand must be given");
        if (maxRowBlocks < 1) throw new IllegalArgumentException("grouped GEMM " + gemm + ": maxRowBlocks must be >= 1, got " + maxRowBlocks);
        if (n < GRANULE || n % GRANULE != 0) throw new IllegalArgumentException("grouped GEMM " + gemm + ": N = " + n + " must be a positive multiple of " + GRANULE);
        if (k < GRANULE || k % GRANULE != 0) throw new IllegalArgumentException("grouped GEMM " + gemm + ": K = " + k + " must be a positive multiple of " + GRANULE);
        if (smCount < 1) throw new IllegalArgumentException("grouped GEMM " + gemm + ": smCount must be >= 1, got " + smCount);
    }

    /** One line, for logs and benchmark output. */
    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s tile %dx%dx%d stages %d threads %d smem %d grid %dx%d%s",
                kernel, blockM, blockN, blockK, stages, threads, dynamicSmemBytes, gridX, gridY, dynamicUnits ? " dynamic units" : "");
    }
}
