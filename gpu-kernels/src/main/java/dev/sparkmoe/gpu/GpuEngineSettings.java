package dev.sparkmoe.gpu;

import dev.sparkmoe.config.Setting;
import dev.sparkmoe.config.Settings;

/** The settings of the GPU engine, declared once (read when an engine is opened). */
public final class GpuEngineSettings {
    private GpuEngineSettings() {}

    public static final Setting<Boolean> GRAPHS = Settings.booleanSetting("sparkmoe.gpu.graphs",
            "Capture the layer as one CUDA graph per token-count bucket and replay it (a call then costs one graph launch); "
                    + "false launches the kernels one by one (same results, bitwise).",
            true);

    public static final Setting<Integer> MAX_TOKENS = Settings.intSetting("sparkmoe.gpu.maxTokens",
            "Most tokens per GPU launch, a power of two: buckets are powers of two from 16 up to it, the workspace is sized "
                    + "for it, and a larger forward() runs as several launches.",
            TokenBuckets.DEFAULT_MAX_TOKENS);

    public static final Setting<Boolean> REFERENCE_GEMM = Settings.booleanSetting("sparkmoe.gpu.referenceGemm",
            "Use the SIMT reference grouped GEMMs (exact fp32 accumulation, slow) instead of the wgmma kernels: for "
                    + "cross-checks only.",
            false);

    public static final Setting<String> ROUTER_KERNEL = Settings.stringSetting("sparkmoe.gpu.routerKernel",
            "Router logits kernel: tc (fp64 tensor cores, DMMA) or simt (fp64 FMA). Both accumulate in fp64 and round once "
                    + "to fp32 like the CPU reference, so routing decisions match it.",
            "tc");
}
