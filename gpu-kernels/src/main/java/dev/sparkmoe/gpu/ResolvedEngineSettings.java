package dev.sparkmoe.gpu;

import dev.sparkmoe.cuda.CudaContext;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.kernels.GroupedGemm;
import dev.sparkmoe.kernels.MoeDecode;
import dev.sparkmoe.kernels.MoeDispatch;
import dev.sparkmoe.kernels.MoeRoute;
import dev.sparkmoe.model.MoeConfig;

import java.util.HashMap;
import java.util.Map;
import java.util.function.IntSupplier;

/**
 * The {@link GpuEngineSettings} of one engine, read and validated once when it is opened (declarations, docs and
 * defaults stay there), with the choices that depend on the layer and the GPU already made: the expert output
 * precision ({@code auto}), the shared-expert branch (only with a shared expert) and the small-batch limit (0 with
 * the reference GEMMs).
 *
 * @param sharedBranch     the layer has a shared expert and {@link GpuEngineSettings#SHARED_EXPERT_STREAM} is on
 * @param yBf16            GEMM2 stores the expert outputs in bf16 ({@link GpuEngineSettings#EXPERT_OUTPUT_PRECISION})
 * @param decodeMaxTokens  calls of at most this many tokens run the small-batch path; 0: off
 * @param gatherRows       FP8: the routed GEMM1 gathers its rows from the once-quantized tokens ({@link GpuEngineSettings#GATHER_ROWS})
 * @param gemmDynamicUnits which grouped GEMMs claim their units at run time ({@link GpuEngineSettings#GEMM_DYNAMIC_UNITS};
 *                         only the sm_90a production tiles have that form: OFF with the reference GEMMs or another GPU)
 */
record ResolvedEngineSettings(boolean graphs, int maxTokens, MoeRoute.Kernel routerKernel, boolean referenceGemm,
                              int fp8PromotionInterval, boolean yBf16, MoeDispatch.ScatterKernel scatterKernel, ForwardMode forwardMode,
                              int stagingSlots, long stagingBytes, boolean sharedBranch, boolean bf16SkipPadding,
                              boolean bf16Gemm1SkipPadding, int decodeMaxTokens, boolean gatherRows,
                              GroupedGemm.DynamicUnits gemmDynamicUnits) {

    /** Reads the settings (JVM system properties) for layer {@code c} in {@code p} on GPU {@code ordinal}; a bad value is refused naming its key. */
    static ResolvedEngineSettings resolve(MoeConfig c, Precision p, int ordinal) {
        Map<String, String> properties = new HashMap<>();
        for (String key : System.getProperties().stringPropertyNames()) properties.put(key, System.getProperty(key));
        return resolve(c, p, ordinal, properties, () -> CudaContext.computeCapability(ordinal));
    }

    /**
     * The same from {@code source}, with the GPU's compute capability (e.g. 90 for 9.0) from {@code computeCapability}
     * (tests resolve without a GPU).
     */
    static ResolvedEngineSettings resolve(MoeConfig c, Precision p, int ordinal, Map<String, String> source, IntSupplier computeCapability) {
        boolean useGraphs = GpuEngineSettings.GRAPHS.from(source);
        int maxTokens = GpuEngineSettings.MAX_TOKENS.from(source);
        MoeRoute.Kernel router;
        try {
            router = MoeRoute.Kernel.parse(GpuEngineSettings.ROUTER_KERNEL.from(source));
        } catch (IllegalArgumentException e) {
            throw new MoeEngineException(GpuEngineSettings.ROUTER_KERNEL.key() + ": " + e.getMessage());
        }
        TokenBuckets.bucket(1, maxTokens); // validates the setting
        String yPrecision = GpuEngineSettings.EXPERT_OUTPUT_PRECISION.from(source);
        if (!yPrecision.equalsIgnoreCase("auto") && !yPrecision.equalsIgnoreCase("fp32") && !yPrecision.equalsIgnoreCase("bf16")) {
            throw new MoeEngineException(GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key() + " must be auto, fp32 or bf16, got '" + yPrecision + "'");
        }
        boolean referenceGemm = GpuEngineSettings.REFERENCE_GEMM.from(source);
        int fp8PromotionInterval = GpuEngineSettings.FP8_PROMOTION_INTERVAL.from(source);
        if (fp8PromotionInterval != 128 && fp8PromotionInterval != 32) {
            throw new MoeEngineException(GpuEngineSettings.FP8_PROMOTION_INTERVAL.key() + " must be 128 or 32, got " + fp8PromotionInterval);
        }
        int cc = computeCapability.getAsInt();
        boolean yBf16;
        if (yPrecision.equalsIgnoreCase("auto")) {
            // bf16 on the fast path; fp32 wherever accuracy was asked for (reference GEMMs, promotion every 32) or the
            // sm_90a kernels are missing
            yBf16 = !referenceGemm && cc == 90 && fp8PromotionInterval == 128;
        } else {
            yBf16 = yPrecision.equalsIgnoreCase("bf16");
        }
        if (yBf16 && referenceGemm) {
            throw new MoeEngineException(GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key() + "=bf16 needs the production GEMMs: the "
                    + "reference GEMMs (" + GpuEngineSettings.REFERENCE_GEMM.key() + "=true) store fp32 only");
        }
        if (yBf16 && cc != 90) {
            throw new MoeEngineException(GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key() + "=bf16 needs the sm_90a GEMM kernels; GPU "
                    + ordinal + " has compute capability " + cc / 10 + "." + cc % 10 + " (use fp32)");
        }
        MoeDispatch.ScatterKernel scatterKernel;
        try {
            scatterKernel = MoeDispatch.ScatterKernel.parse(GpuEngineSettings.SCATTER_KERNEL.from(source));
        } catch (IllegalArgumentException e) {
            throw new MoeEngineException(GpuEngineSettings.SCATTER_KERNEL.key() + ": " + e.getMessage());
        }
        boolean gatherRows = p == Precision.FP8 && GpuEngineSettings.GATHER_ROWS.from(source);
        if (gatherRows && (referenceGemm || fp8PromotionInterval != 128 || cc != 90)) {
            throw new MoeEngineException(GpuEngineSettings.GATHER_ROWS.key() + "=true needs the production sm_90a FP8 GEMMs with "
                    + "promotion every 128 (referenceGemm " + referenceGemm + ", fp8PromotionInterval " + fp8PromotionInterval
                    + ", compute capability " + cc / 10 + "." + cc % 10 + ")");
        }
        if (p == Precision.FP8 && fp8PromotionInterval == 32 && c.hiddenSize() % 256 != 0) {
            throw new MoeEngineException(GpuEngineSettings.FP8_PROMOTION_INTERVAL.key() + "=32 needs a hidden size that is a "
                    + "multiple of 256; this layer's is " + c.hiddenSize());
        }
        ForwardMode mode = ForwardMode.parse(GpuEngineSettings.FORWARD_MODE.from(source));
        int slots = GpuEngineSettings.STAGING_SLOTS.from(source);
        if (slots < 1) throw new MoeEngineException(GpuEngineSettings.STAGING_SLOTS.key() + " must be >= 1, got " + slots);
        long slotBytes = GpuEngineSettings.STAGING_BYTES.from(source);
        if (slotBytes < 1) throw new MoeEngineException(GpuEngineSettings.STAGING_BYTES.key() + " must be positive, got " + slotBytes);
        boolean branch = c.hasSharedExpert() && GpuEngineSettings.SHARED_EXPERT_STREAM.from(source);
        boolean bf16SkipPadding = GpuEngineSettings.BF16_SKIP_PADDING_HALVES.from(source);
        boolean bf16Gemm1SkipPadding = bf16SkipPadding || GpuEngineSettings.BF16_GEMM1_SKIP_PADDING_HALVES.from(source);
        int small = GpuEngineSettings.DECODE_MAX_TOKENS.from(source);
        if (small < 0 || small > MoeDecode.MAX_TOKENS) {
            throw new MoeEngineException(GpuEngineSettings.DECODE_MAX_TOKENS.key() + " must be 0.." + MoeDecode.MAX_TOKENS + ", got " + small);
        }
        // the reference GEMMs are for exact cross-checks of the grouped path: they keep it for every size
        if (referenceGemm) small = 0;
        GroupedGemm.DynamicUnits dynamicUnits;
        try {
            dynamicUnits = GroupedGemm.DynamicUnits.parse(GpuEngineSettings.GEMM_DYNAMIC_UNITS.from(source));
        } catch (IllegalArgumentException e) {
            throw new MoeEngineException(GpuEngineSettings.GEMM_DYNAMIC_UNITS.key() + ": " + e.getMessage());
        }
        if (referenceGemm || cc != 90) dynamicUnits = GroupedGemm.DynamicUnits.OFF;
        return new ResolvedEngineSettings(useGraphs, maxTokens, router, referenceGemm, fp8PromotionInterval, yBf16, scatterKernel, mode,
                slots, slotBytes, branch, bf16SkipPadding, bf16Gemm1SkipPadding, small, gatherRows, dynamicUnits);
    }
}
