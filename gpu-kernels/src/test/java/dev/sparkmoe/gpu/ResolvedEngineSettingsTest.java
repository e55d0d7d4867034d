package dev.sparkmoe.gpu;

import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.kernels.GroupedGemm;
import dev.sparkmoe.kernels.MoeDispatch;
import dev.sparkmoe.kernels.MoeRoute;
import dev.sparkmoe.model.ModelFamily;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.model.ScoringFunction;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** The engine's settings resolved without a GPU (the compute capability is given). */
class ResolvedEngineSettingsTest {
    private static final MoeConfig DEEPSEEK = SyntheticCheckpoint.preset("tiny-deepseek", 1, DType.F8_E4M3);
    private static final MoeConfig MIXTRAL = SyntheticCheckpoint.preset("tiny-mixtral", 1, DType.BF16);

    private static ResolvedEngineSettings resolve(MoeConfig c, Precision p, int cc, Map<String, String> props) {
        return ResolvedEngineSettings.resolve(c, p, 0, props, () -> cc);
    }

    @Test
    void defaultsAreTheDeclaredOnes() {
        ResolvedEngineSettings s = resolve(DEEPSEEK, Precision.FP8, 90, Map.of());
        assertEquals(GpuEngineSettings.GRAPHS.defaultValue(), s.graphs());
        assertEquals(GpuEngineSettings.MAX_TOKENS.defaultValue(), s.maxTokens());
        assertEquals(MoeRoute.Kernel.parse(GpuEngineSettings.ROUTER_KERNEL.defaultValue()), s.routerKernel());
        assertEquals(GpuEngineSettings.REFERENCE_GEMM.defaultValue(), s.referenceGemm());
        assertEquals(GpuEngineSettings.FP8_PROMOTION_INTERVAL.defaultValue(), s.fp8PromotionInterval());
        assertEquals(MoeDispatch.ScatterKernel.parse(GpuEngineSettings.SCATTER_KERNEL.defaultValue()), s.scatterKernel());
        assertEquals(ForwardMode.parse(GpuEngineSettings.FORWARD_MODE.defaultValue()), s.forwardMode());
        assertEquals(GpuEngineSettings.STAGING_SLOTS.defaultValue(), s.stagingSlots());
        assertEquals(GpuEngineSettings.STAGING_BYTES.defaultValue(), s.stagingBytes());
        assertEquals(GpuEngineSettings.SHARED_EXPERT_STREAM.defaultValue(), s.sharedBranch()); // DeepSeek has a shared expert
        assertEquals(GpuEngineSettings.BF16_SKIP_PADDING_HALVES.defaultValue(), s.bf16SkipPadding());
        assertEquals(GpuEngineSettings.DECODE_MAX_TOKENS.defaultValue(), s.decodeMaxTokens());
        assertEquals(GroupedGemm.DynamicUnits.parse(GpuEngineSettings.GEMM_DYNAMIC_UNITS.defaultValue()), s.gemmDynamicUnits());
    }

    @Test
    void dynamicUnitsOnlyOnTheSm90aProductionGemms() {
        String key = GpuEngineSettings.GEMM_DYNAMIC_UNITS.key();
        assertEquals(GroupedGemm.DynamicUnits.ALL, resolve(DEEPSEEK, Precision.FP8, 90, Map.of(key, "ALL")).gemmDynamicUnits());
        assertEquals(GroupedGemm.DynamicUnits.OFF, resolve(DEEPSEEK, Precision.FP8, 90, Map.of(key, "off")).gemmDynamicUnits());
        assertEquals(GroupedGemm.DynamicUnits.OFF, resolve(DEEPSEEK, Precision.FP8, 100, Map.of(key, "all")).gemmDynamicUnits(), "not sm_90a");
        assertEquals(GroupedGemm.DynamicUnits.OFF,
                resolve(DEEPSEEK, Precision.FP8, 90, Map.of(key, "all", GpuMoeEngine.REFERENCE_GEMM_PROPERTY, "true")).gemmDynamicUnits());
    }

    @Test
    void autoExpertOutputPrecisionIsBf16OnlyOnTheFastPath() {
        assertTrue(resolve(DEEPSEEK, Precision.FP8, 90, Map.of()).yBf16());
        assertFalse(resolve(DEEPSEEK, Precision.FP8, 100, Map.of()).yBf16(), "not sm_90a");
        assertFalse(resolve(DEEPSEEK, Precision.FP8, 90, Map.of(GpuMoeEngine.REFERENCE_GEMM_PROPERTY, "true")).yBf16());
        assertFalse(resolve(DEEPSEEK, Precision.FP8, 90, Map.of(GpuEngineSettings.FP8_PROMOTION_INTERVAL.key(), "32")).yBf16());
        assertFalse(resolve(DEEPSEEK, Precision.FP8, 90, Map.of(GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key(), "FP32")).yBf16());
        assertTrue(resolve(MIXTRAL, Precision.NATIVE, 90, Map.of(GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key(), "bf16")).yBf16());
    }

    @Test
    void choicesThatDependOnTheLayer() {
        // no shared expert: no branch, and the setting is not even read (a malformed value is not an error there)
        Map<String, String> odd = Map.of(GpuEngineSettings.SHARED_EXPERT_STREAM.key(), "maybe");
        assertFalse(resolve(MIXTRAL, Precision.NATIVE, 90, odd).sharedBranch());
        assertThrows(RuntimeException.class, () -> resolve(DEEPSEEK, Precision.FP8, 90, odd));
        assertFalse(resolve(DEEPSEEK, Precision.FP8, 90, Map.of(GpuEngineSettings.SHARED_EXPERT_STREAM.key(), "false")).sharedBranch());
        // the reference GEMMs keep the grouped path for every size
        assertEquals(0, resolve(DEEPSEEK, Precision.FP8, 90, Map.of(GpuMoeEngine.REFERENCE_GEMM_PROPERTY, "true")).decodeMaxTokens());
        // skipping padding in both GEMMs implies GEMM1
        Map<String, String> both = Map.of(GpuEngineSettings.BF16_SKIP_PADDING_HALVES.key(), "true",
                GpuEngineSettings.BF16_GEMM1_SKIP_PADDING_HALVES.key(), "false");
        ResolvedEngineSettings s = resolve(MIXTRAL, Precision.NATIVE, 90, both);
        assertTrue(s.bf16SkipPadding());
        assertTrue(s.bf16Gemm1SkipPadding());
        assertFalse(resolve(MIXTRAL, Precision.NATIVE, 90, Map.of(GpuEngineSettings.BF16_GEMM1_SKIP_PADDING_HALVES.key(), "false"))
                .bf16Gemm1SkipPadding());
    }

    @Test
    void badValuesAreRefusedNamingTheirKey() {
        refused(DEEPSEEK, Precision.FP8, 90, GpuEngineSettings.ROUTER_KERNEL.key(), "tc9", "router kernel must be");
        refused(DEEPSEEK, Precision.FP8, 90, GpuEngineSettings.MAX_TOKENS.key(), "1000", "power of two");
        refused(DEEPSEEK, Precision.FP8, 90, GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key(), "fp16", "must be auto, fp32 or bf16");
        refused(DEEPSEEK, Precision.FP8, 90, GpuEngineSettings.FP8_PROMOTION_INTERVAL.key(), "64", "must be 128 or 32");
        refused(DEEPSEEK, Precision.FP8, 80, GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key(), "bf16", "compute capability 8.0");
        refused(DEEPSEEK, Precision.FP8, 90, GpuEngineSettings.SCATTER_KERNEL.key(), "fast", GpuEngineSettings.SCATTER_KERNEL.key());
        refused(DEEPSEEK, Precision.FP8, 90, GpuEngineSettings.FORWARD_MODE.key(), "async", "must be serial, pipelined or overlapped");
        refused(DEEPSEEK, Precision.FP8, 90, GpuEngineSettings.STAGING_SLOTS.key(), "0", "must be >= 1");
        refused(DEEPSEEK, Precision.FP8, 90, GpuEngineSettings.STAGING_BYTES.key(), "0", "must be positive");
        refused(DEEPSEEK, Precision.FP8, 90, GpuEngineSettings.DECODE_MAX_TOKENS.key(), "33", "must be 0..32");
        refused(DEEPSEEK, Precision.FP8, 90, GpuEngineSettings.GEMM_DYNAMIC_UNITS.key(), "true", "must be off, gemm1 or all");
        refused(DEEPSEEK, Precision.FP8, 100, GpuEngineSettings.GATHER_ROWS.key(), "true", "compute capability 10.0");
        MoeEngineException g = assertThrows(MoeEngineException.class, () -> resolve(DEEPSEEK, Precision.FP8, 90,
                Map.of(GpuEngineSettings.GATHER_ROWS.key(), "true", GpuEngineSettings.FP8_PROMOTION_INTERVAL.key(), "32")));
        assertTrue(g.getMessage().contains(GpuEngineSettings.GATHER_ROWS.key()), g.getMessage());
        assertTrue(resolve(DEEPSEEK, Precision.FP8, 90, Map.of(GpuEngineSettings.GATHER_ROWS.key(), "true")).gatherRows());
        assertFalse(resolve(MIXTRAL, Precision.NATIVE, 90, Map.of(GpuEngineSettings.GATHER_ROWS.key(), "true")).gatherRows(), "FP8 only");
        MoeEngineException e = assertThrows(MoeEngineException.class, () -> resolve(DEEPSEEK, Precision.FP8, 90,
                Map.of(GpuEngineSettings.EXPERT_OUTPUT_PRECISION.key(), "bf16", GpuMoeEngine.REFERENCE_GEMM_PROPERTY, "true")));
        assertTrue(e.getMessage().contains("reference GEMMs"), e.getMessage());
        // promotion every 32 needs a hidden size that is a multiple of 256 in FP8 only
        MoeConfig h384 = new MoeConfig(ModelFamily.MIXTRAL, 384, 128, 8, 2, 0, false, ScoringFunction.SOFTMAX, 1, 1, true, 1f,
                false, 1, Set.of(0), null);
        Map<String, String> p32 = Map.of(GpuEngineSettings.FP8_PROMOTION_INTERVAL.key(), "32");
        e = assertThrows(MoeEngineException.class, () -> resolve(h384, Precision.FP8, 90, p32));
        assertTrue(e.getMessage().contains("multiple of 256; this layer's is 384"), e.getMessage());
        assertEquals(32, resolve(h384, Precision.NATIVE, 90, p32).fp8PromotionInterval());
    }

    private static void refused(MoeConfig c, Precision p, int cc, String key, String value, String why) {
        try {
            resolve(c, p, cc, Map.of(key, value));
            fail(key + "=" + value + " was accepted");
        } catch (MoeEngineException e) {
            assertTrue(e.getMessage().contains(key) || e.getMessage().contains(value), e.getMessage());
            assertTrue(e.getMessage().contains(why), e.getMessage());
        }
    }
}
