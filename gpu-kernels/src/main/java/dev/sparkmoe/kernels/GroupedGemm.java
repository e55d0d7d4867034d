package dev.sparkmoe.kernels;

import dev.sparkmoe.cuda.CudaFunction.Dim;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;
import dev.sparkmoe.kernels.GroupedGemmConfig.Gemm;
import dev.sparkmoe.kernels.GroupedGemmConfig.Operand;
import java.util.Arrays;
import java.util.Set;
import java.util.TreeSet;

/**
 * Launcher of grouped_gemm.cu: the four grouped GEMM entry points over the M-grouped contiguous layout, launched as
 * {@link GroupedGemmConfig} says (grid sized for the worst case; the kernels read the used row blocks from the device).
 */
public final class GroupedGemm {
    private final CudaModule module;
    private final int smCount;
    private final boolean reference;
    private final int fp8PromotionInterval;
    private final boolean yBf16;
    private final WorkCounters workCounters;
    private final DynamicUnits dynamicUnits;

    /** Which grouped GEMMs claim their work units at run time (grouped_gemm_schedule.cuh, Tile::kDynamic). */
    public enum DynamicUnits {
        /** None: every GEMM takes the static unit stride. */
        OFF,
        /** GEMM1 (gate/up + SwiGLU) only: its K = H weight tiles are the ones re-read from DRAM when CTAs drift apart. */
        GEMM1,
        /** GEMM1 and GEMM2. */
        ALL;

        /** The value of a {@code sparkmoe.gpu.gemmDynamicUnits} setting: off, gemm1 or all. */
        public static DynamicUnits parse(String s) {
            for (DynamicUnits d : values()) if (d.name().equalsIgnoreCase(s)) return d;
            throw new IllegalArgumentException("dynamic units must be off, gemm1 or all, got '" + s + "'");
        }

        boolean covers(Gemm g) { return this == ALL || (this == GEMM1 && g == Gemm.GEMM1_SWIGLU); }
    }

    /** @param reference launch the SIMT *_ref kernels instead of the production ones (cross-checks) */
    public GroupedGemm(CudaModule module, int smCount, boolean reference) {
        this(module, smCount, reference, 128);
    }

    /** @param fp8PromotionInterval K per promotion of the FP8 kernels into the fp32 result: 128 or 32 */
    public GroupedGemm(CudaModule module, int smCount, boolean reference, int fp8PromotionInterval) {
        this(module, smCount, reference, fp8PromotionInterval, false);
    }

    /**
     * @param yBf16 GEMM2 stores Y in bf16 (the {@code *_ybf16} entry points: the production kernels' bf16 store; no
     *              reference kernel has one, so not with {@code reference})
     */
    public GroupedGemm(CudaModule module, int smCount, boolean reference, int fp8PromotionInterval, boolean yBf16) {
        this(module, smCount, reference, fp8PromotionInterval, yBf16, null, DynamicUnits.OFF);
    }

    /**
     * @param workCounters the counter pairs of the streams launches go to (owned by the caller), needed unless
     *                     {@code dynamicUnits} is OFF
     * @param dynamicUnits which GEMMs launch the production tiles' dynamic-unit forms (units claimed at run time); OFF
     *                     with {@code reference}
     */
    public GroupedGemm(CudaModule module, int smCount, boolean reference, int fp8PromotionInterval, boolean yBf16,
                       WorkCounters workCounters, DynamicUnits dynamicUnits) {
        if (dynamicUnits == null) throw new IllegalArgumentException("dynamic units must be given (OFF for none)");
        if (reference && dynamicUnits != DynamicUnits.OFF) throw new IllegalArgumentException("the reference GEMMs have no dynamic-unit form");
        if (dynamicUnits != DynamicUnits.OFF && workCounters == null) {
            throw new IllegalArgumentException("dynamic units " + dynamicUnits + " need the streams' work counters");
        }
        if (fp8PromotionInterval != 128 && fp8PromotionInterval != 32) {
            throw new IllegalArgumentException("FP8 promotion interval must be 128 or 32, got " + fp8PromotionInterval);
        }
        if (reference && yBf16) throw new IllegalArgumentException("the reference GEMMs store Y in fp32 only, not bf16");
        this.module = module;
        this.smCount = smCount;
        this.reference = reference;
        this.fp8PromotionInterval = fp8PromotionInterval;
        this.yBf16 = yBf16;
        this.workCounters = workCounters;
        this.dynamicUnits = dynamicUnits;
    }

    /**
     * Where the real (non-padding) rows of each expert lie, read on the device: expert e's rows are
     * {@code expertStart[e] .. expertStart[e] + expertCount[e] - 1} of the padded layout. The GEMMs then skip 64-row
     * halves of a 128-row block that hold only padding (their outputs stay unwritten; nothing reads them).
     * {@link #ALL} computes every row of every used block.
     */
    public record RealRows(DeviceBuffer expertCount, DeviceBuffer expertStart) {
        /** No skipping: every row of a used block is computed. */
        public static final RealRows ALL = new RealRows(null, null);

        /** The dispatch's per-expert counts and padded start rows (int32[E] each). */
        public static RealRows ofExperts(DeviceBuffer expertCount, DeviceBuffer expertStart) {
            if (expertCount == null || expertStart == null) {
                throw new IllegalArgumentException("RealRows.ofExperts needs both the expert count and expert start buffers");
            }
            return new RealRows(expertCount, expertStart);
        }

        /** One group starting at row 0 whose real row count is the device int32 {@code rowCount} (the shared expert). */
        public static RealRows singleGroup(DeviceBuffer rowCount) {
            if (rowCount == null) throw new IllegalArgumentException("RealRows.singleGroup needs the row count buffer");
            return new RealRows(rowCount, null);
        }

        /** Row blocks of the layout that may be partly padding: one per group (experts, or the single group); 0 for {@link #ALL}. */
        int partialBlocks() {
            if (expertCount == null) return 0;
            return expertStart == null ? 1 : Math.toIntExact(expertCount.byteSize() / 4);
        }

        Object countArg() { return MoeRoute.nullable(expertCount); }

        Object startArg() { return MoeRoute.nullable(expertStart); }
    }

    /**
     * The launch configuration this launcher uses for a problem; {@code partialBlocks}: how many of the row blocks may be
     * partly padding ({@link GroupedGemmConfig#choose(Gemm, Operand, int, int, int, int, int, int, boolean)}).
     */
    public GroupedGemmConfig config(Gemm gemm, Operand op, int maxRowBlocks, int partialBlocks, int n, int k) {
        return reference ? GroupedGemmConfig.reference(gemm, op, maxRowBlocks, n, k)
                : GroupedGemmConfig.choose(gemm, op, maxRowBlocks, partialBlocks, n, k, smCount, fp8PromotionInterval, dynamicUnits.covers(gemm));
    }

    private GroupedGemmConfig config(Gemm gemm, Operand op, int maxRowBlocks, int n, int k, RealRows real) {
        if (real == null) throw new IllegalArgumentException("real rows must be given (RealRows.ALL to compute every row)");
        return config(gemm, op, maxRowBlocks, real.partialBlocks(), n, k);
    }

    /** Hout[r, :N] = silu(A[r] . gate_e) * (A[r] . up_e), e = block_expert[r / 128]; K = H, N = I. */
    public void gemm1Bf16(CudaStream s, DeviceBuffer a, DeviceBuffer w1, DeviceBuffer hout, DeviceBuffer blockExpert,
                          DeviceBuffer numRowBlocks, int maxRowBlocks, int k, int n, RealRows real) {
        GroupedGemmConfig c = config(Gemm.GEMM1_SWIGLU, Operand.BF16, maxRowBlocks, n, k, real);
        launch(s, c, real, a, w1, hout, blockExpert, numRowBlocks, maxRowBlocks, k, n);
    }

    /** Y[r, :N] = row_weight[r] * (A[r] . down_e); K = I, N = H; Y fp32 (or bf16: {@code yBf16}). */
    public void gemm2Bf16(CudaStream s, DeviceBuffer a, DeviceBuffer w2, DeviceBuffer y, DeviceBuffer rowWeight,
                          DeviceBuffer blockExpert, DeviceBuffer numRowBlocks, int maxRowBlocks, int k, int n, RealRows real) {
        GroupedGemmConfig c = config(Gemm.GEMM2, Operand.BF16, maxRowBlocks, n, k, real);
        launch(s, gemm2Kernel(c, y), c, real, a, w2, y, rowWeight, blockExpert, numRowBlocks, maxRowBlocks, k, n);
    }

    /** FP8 GEMM1 with 1x128 activation and 128x128 weight scales; the SwiGLU output re-quantized per 128 into Hout/HoutScale. */
    public void gemm1Fp8(CudaStream s, DeviceBuffer a, DeviceBuffer aScale, DeviceBuffer w1, DeviceBuffer w1Scale,
                         DeviceBuffer hout, DeviceBuffer houtScale, DeviceBuffer blockExpert, DeviceBuffer numRowBlocks,
                         int maxRowBlocks, int k, int n, RealRows real) {
        GroupedGemmConfig c = config(Gemm.GEMM1_SWIGLU, Operand.FP8, maxRowBlocks, n, k, real);
        launch(s, c, real, a, aScale, w1, w1Scale, hout, houtScale, blockExpert, numRowBlocks, maxRowBlocks, k, n);
    }

    /**
     * FP8 GEMM1 gathering its A rows ({@link GroupedGemmConfig#gatheredFp8Gemm1}): routed row r reads row
     * {@code tokenOfSlot[r]} of {@code aTokens} / {@code aTokensScale} (the activations quantized once per token, rows =
     * tokens, in the activation layouts); the experts' padding rows (from {@code real}, which must be the experts'
     * counts and starts) are zero-filled. Production kernels with promotion every 128 only.
     */
    public void gemm1Fp8Gathered(CudaStream s, DeviceBuffer aTokens, DeviceBuffer aTokensScale, DeviceBuffer tokenOfSlot,
                                 DeviceBuffer w1, DeviceBuffer w1Scale, DeviceBuffer hout, DeviceBuffer houtScale,
                                 DeviceBuffer blockExpert, DeviceBuffer numRowBlocks, int maxRowBlocks, int k, int n, RealRows real) {
        if (reference || fp8PromotionInterval != 128) {
            throw new IllegalArgumentException("the gathering GEMM1 exists for the production FP8 kernels with promotion every 128 only"
                    + " (reference " + reference + ", promotion interval " + fp8PromotionInterval + ")");
        }
        if (real == null || real.expertCount() == null || real.expertStart() == null) {
            throw new IllegalArgumentException("the gathering GEMM1 needs the experts' real rows (RealRows.ofExperts): it zero-fills padding rows");
        }
        if (aTokens.byteSize() > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException("gathered A '" + aTokens.name() + "' has " + aTokens.byteSize()
                    + " bytes; the kernel addresses it with 32-bit offsets (at most 4 GiB: fewer tokens per launch)");
        }
        GroupedGemmConfig c = GroupedGemmConfig.gatheredFp8Gemm1(maxRowBlocks, n, k, smCount, dynamicUnits.covers(Gemm.GEMM1_SWIGLU));
        launch(s, c, real, aTokens, aTokensScale, tokenOfSlot, w1, w1Scale, hout, houtScale, blockExpert, numRowBlocks,
                maxRowBlocks, k, n);
    }

    /** FP8 GEMM2 with the routing-weight epilogue, fp32 (or bf16: {@code yBf16}) output. */
    public void gemm2Fp8(CudaStream s, DeviceBuffer a, DeviceBuffer aScale, DeviceBuffer w2, DeviceBuffer w2Scale,
                         DeviceBuffer y, DeviceBuffer rowWeight, DeviceBuffer blockExpert, DeviceBuffer numRowBlocks,
                         int maxRowBlocks, int k, int n, RealRows real) {
        GroupedGemmConfig c = config(Gemm.GEMM2, Operand.FP8, maxRowBlocks, n, k, real);
        launch(s, gemm2Kernel(c, y), c, real, a, aScale, w2, w2Scale, y, rowWeight, blockExpert, numRowBlocks, maxRowBlocks, k, n);
    }

    /** GEMM2's entry point: the config's, or its bf16-Y form; {@code y} must have the matching element size. */
    private String gemm2Kernel(GroupedGemmConfig c, DeviceBuffer y) {
        int want = yBf16 ? 2 : 4;
        if (y.elementBytes() != want) {
            throw new IllegalArgumentException("GEMM2 output '" + y.name() + "' has " + y.elementBytes() + "-byte elements; this launcher "
                    + "stores Y in " + (yBf16 ? "bf16 (2 bytes)" : "fp32 (4 bytes)"));
        }
        return gemm2EntryPoint(c.kernel());
    }

    /** The entry point this launcher runs for GEMM2 kernel {@code kernel}: its bf16-Y form ({@code *_ybf16}) or the kernel itself. */
    private String gemm2EntryPoint(String kernel) { return yBf16 ? kernel + "_ybf16" : kernel; }

    /** Every GEMM2 entry point this launcher may run for N = {@code n}, K = {@code k}, whatever the row-block counts. */
    public Set<String> gemm2EntryPoints(Operand op, int n, int k) {
        Set<String> kernels = reference ? Set.of(GroupedGemmConfig.reference(Gemm.GEMM2, op, 1, n, k).kernel())
                : GroupedGemmConfig.kernels(Gemm.GEMM2, op, n, k, smCount, fp8PromotionInterval, dynamicUnits.covers(Gemm.GEMM2));
        Set<String> names = new TreeSet<>();
        for (String kernel : kernels) names.add(gemm2EntryPoint(kernel));
        return names;
    }

    /** Launches with {@code args} followed by the two RealRows pointers (every entry point's last arguments) and, for a dynamic-unit kernel, the stream's work-counter pair. */
    private void launch(CudaStream s, GroupedGemmConfig c, RealRows real, Object... args) {
        launch(s, c.kernel(), c, real, args);
    }

    private void launch(CudaStream s, String kernel, GroupedGemmConfig c, RealRows real, Object... args) {
        if (real == null) throw new IllegalArgumentException("real rows must be given (RealRows.ALL to compute every row)");
        Object[] all = Arrays.copyOf(args, args.length + (c.dynamicUnits() ? 3 : 2));
        all[args.length] = real.countArg();
        all[args.length + 1] = real.startArg();
        if (c.dynamicUnits()) all[args.length + 2] = workCounters.of(s);
        module.function(kernel).launch(s, Dim.of(c.gridX(), c.gridY()), Dim.of(c.threads()), c.dynamicSmemBytes(), all);
    }
}
