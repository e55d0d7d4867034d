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

    public static final Setting<Integer> FP8_PROMOTION_INTERVAL = Settings.intSetting("sparkmoe.gpu.fp8PromotionInterval",
            "FP8 GEMMs: how many K (of the 32 per tensor-core instruction) accumulate in the tensor cores' reduced-precision "
                    + "accumulator before the partial sum is scaled and added to the fp32 result: 128 (DeepSeek's recipe, what "
                    + "DeepGEMM does; the intermediate's re-quantization then differs from an exactly accumulating reference in "
                    + "~1% of its e4m3 codes) or 32 (closer to exact accumulation, ~40% slower GEMMs: session-1 GEMM1 runs "
                    + "measured 1.8e-3 instead of 3.3e-3 against the exact recipe). 32 needs a hidden size that is a multiple of 256.",
            128);

    public static final Setting<String> ROUTER_KERNEL = Settings.stringSetting("sparkmoe.gpu.routerKernel",
            "Router logits kernel: auto (default: certwg when the layer's router weights are exact in bf16, as checkpoints "
                    + "store them, and the hidden size is a multiple of 64; cert for other hidden sizes; else tc2w), cert "
                    + "(session 12: logits on the BF16 tensor cores - x split exactly into three bf16 terms, "
                    + "products exact, fp32 sums promoted to fp64 every 64 of K - then per token a certificate that no logit error "
                    + "within the bound 76 x 2^-23 ||x|| ||w|| can change the CPU's choice of groups and experts; the tokens it cannot "
                    + "clear (near ties) are routed again from tc2w's fp64 logits, so the chosen experts are the CPU's; routing "
                    + "weights of certified tokens come from the fast logits, within ~1e-7 of the CPU's), certwg (session 13: cert's "
                    + "sums, bound, certificate and fallback with the logits on warpgroup MMAs - 64x128 tiles, x split once per CTA "
                    + "by a producer warpgroup, wgmma m64n64k16 from shared memory; needs a hidden size that is a multiple of 64), "
                    + "tc2w (fp64 tensor cores, DMMA m16n8k8, 64x64 tiles of 4 warps, split K for two "
                    + "waves, x widened into shared memory without bank conflicts; 1.6-5.6 % faster than tc2 on the H200, session 4), "
                    + "tc2 (the same with the session-3 widening, 11.5-way bank conflicts on its stores), tc2o (tc2w with 2 "
                    + "stages and 3 CTAs per SM: 6-12 % faster than tc2 at 16384 DeepSeek-V3 tokens, 3-6 % slower at 4096), tc3 "
                    + "(the same DMMA sums on 128x128 tiles of 8 warps, one CTA per SM, split K only to fill the GPU once; "
                    + "measured as fast as tc2 on the H200, not faster), tc3k16 (tc3 with the m16n8k16 DMMA; measured no faster), "
                    + "all of these reading an fp64 copy of the router weights made on the device at load and widening each "
                    + "input tile to fp64 once; tc (DMMA m8n8k4, widening fp32 tiles at every fragment load) or simt (fp64 "
                    + "FMA). These accumulate in fp64 and round once to fp32 like the CPU reference, so routing decisions match it.",
            "auto");

    public static final Setting<String> FORWARD_MODE = Settings.stringSetting("sparkmoe.gpu.forwardMode",
            "How forward() shares the engine between caller threads: serial (the whole call under the engine lock, host "
                    + "copies included - the first design, kept for comparison), pipelined (each caller copies into its own "
                    + "pinned staging outside the lock; the lock covers only queuing upload, layer, download), overlapped "
                    + "(pipelined, and the uploads and downloads run on copy streams through double-buffered device "
                    + "staging, so one call's transfers overlap another's compute; costs 4 x 4 x bucket x hidden bytes of "
                    + "device memory and measured no faster on the H200, where host memory bandwidth is the limit). "
                    + "Results are bitwise the same.",
            "pipelined");

    public static final Setting<Integer> STAGING_SLOTS = Settings.intSetting("sparkmoe.gpu.stagingSlots",
            "Most pinned staging slots per engine (one per concurrent forward() call; each holds the input and output of "
                    + "one launch: 2 x 4 x bucket x hidden bytes); more concurrent callers wait for a slot.",
            16);

    public static final Setting<Long> STAGING_BYTES = Settings.bytesSetting("sparkmoe.gpu.stagingBytes",
            "Most pinned host memory the staging slots of one engine may hold together (idle slots are freed to make room; "
                    + "a call always gets a slot when the engine has none, however large). 16 DeepSeek-V3 callers of "
                    + "8192-token batches need 7.5 GB.",
            8L << 30);

    public static final Setting<Boolean> SHARED_EXPERT_STREAM = Settings.booleanSetting("sparkmoe.gpu.sharedExpertStream",
            "Run the shared expert (its input conversion and both GEMMs) on a second, lowest-priority stream forked from the "
                    + "layer's highest-priority stream and joined before combine, inside the layer's CUDA graph, so it fills the "
                    + "SMs that routing, dispatch and the routed GEMMs leave idle; false runs it on the layer's stream after the "
                    + "routed GEMMs. Results are bitwise the same.",
            true);

    public static final Setting<Boolean> BF16_SKIP_PADDING_HALVES = Settings.booleanSetting("sparkmoe.gpu.bf16SkipPaddingHalves",
            "BF16 grouped GEMMs: give the kernels each expert's real row count so they idle the second warpgroup of 128-row "
                    + "tiles that hold only padding (measured neutral to -5 % in session 2); false computes every row of a used "
                    + "block. The FP8 GEMMs always skip padding halves (that pays there). Results are the same either way.",
            false);

    public static final Setting<Boolean> BF16_GEMM1_SKIP_PADDING_HALVES = Settings.booleanSetting("sparkmoe.gpu.bf16Gemm1SkipPaddingHalves",
            "BF16 grouped GEMM1 (gate/up + SwiGLU) only: skip the padding halves as bf16SkipPaddingHalves does, while GEMM2 "
                    + "computes every row (bf16SkipPaddingHalves=true skips in both). GEMM2 then also reads the SwiGLU rows "
                    + "GEMM1 skipped, which hold stale values (possibly NaN): harmless, as a GEMM output row depends on its "
                    + "own input row only and the padding rows' outputs are never combined (tested with NaN-poisoned rows). "
                    + "Results are the same either way.",
            true);

    public static final Setting<String> EXPERT_OUTPUT_PRECISION = Settings.stringSetting("sparkmoe.gpu.expertOutputPrecision",
            "Precision in which GEMM2 stores each (token, expert) output row (already multiplied by its routing weight) and "
                    + "the shared expert's rows for combine: fp32, bf16 (rounded to nearest even; half the bytes GEMM2 "
                    + "writes and combine reads - 3.8 GB less traffic per 16384 DeepSeek-V3 tokens, -3.5..-7 % per DeepSeek-V3 "
                    + "layer - at the cost of one bf16 rounding per term: +1.6e-3..1.8e-3 relative on the layer output, measured "
                    + "against fp32 Y on the H200; bf16 is what DeepGEMM's and torch's grouped GEMMs emit), or auto: bf16 on the "
                    + "production sm_90a GEMMs, fp32 with sparkmoe.gpu.referenceGemm, with "
                    + "sparkmoe.gpu.fp8PromotionInterval=32 (the accuracy settings) and on GPUs other than compute capability 9.0. "
                    + "Combine sums in fp32 in the same fixed order either way (bitwise repeatable). An explicit bf16 is "
                    + "refused with sparkmoe.gpu.referenceGemm and on GPUs other than compute capability 9.0.",
            "auto");

    public static final Setting<String> SCATTER_KERNEL = Settings.stringSetting("sparkmoe.gpu.scatterKernel",
            "Kernel that writes each token's row into its k expert rows (BF16, or FP8 quantized per 128 channels): prefetch "
                    + "(a CTA loads its whole row before converting and writing it, row offsets computed once per destination "
                    + "row, FP8 scales of all k rows in one store per block) or blockwise (session 3: one 128/256-channel "
                    + "piece per warp at a time). Results are bitwise the same.",
            "prefetch");

    public static final Setting<String> GEMM_DYNAMIC_UNITS = Settings.stringSetting("sparkmoe.gpu.gemmDynamicUnits",
            "Which grouped GEMMs (sm_90a production tiles) claim their work units at run time from a counter instead of the "
                    + "static stride blockIdx + i * gridDim: gemm1, all or off. Claimed in order, the units sharing an expert's "
                    + "weight tile keep running together and read it from DRAM once; with the static stride, units of unequal "
                    + "length (spill blocks, padding halves) let the CTAs drift apart (DeepSeek-V3 layer, session 6: GEMM1 read "
                    + "its weights 1.5-3.6x, with gemm1 1.3-1.8x; GEMM1 -4..-25 %, GEMM2 measured no faster, so gemm1). The FP8 "
                    + "GEMM1 keeps the static order for launches of at most 16 experts of which at most one in eight of the "
                    + "worst-case row blocks may be partial (Mixtral-like: units of one length stay in step without claiming, and "
                    + "its static tile looks its next unit up during the current one; session 17). Results are bitwise the same "
                    + "(each unit's output depends only on its inputs). Not used with referenceGemm or on GPUs other than "
                    + "compute capability 9.0.",
            "gemm1");

    public static final Setting<Integer> DECODE_MAX_TOKENS = Settings.intSetting("sparkmoe.gpu.decodeMaxTokens",
            "Calls of at most this many tokens (0 = none, at most 32) run the small-batch path (moe_decode.cu): four kernels "
                    + "- route (fp64 router logits, top-k, per-expert plan, GEMM1 activations), GEMM1 + SwiGLU, GEMM2, combine - "
                    + "that stream each used expert's weights once through mma.sync with the tokens as the narrow side, instead "
                    + "of the grouped path's 128-row tiles; FP8 sums each 128-wide K block's e4m3 products in fp32 (sm_90 runs "
                    + "e4m3 mma.sync as f16 HMMAs: exact products) before applying the block scales. The choice depends on the whole "
                    + "call's token count, so a large call's last launch stays on the grouped path (results of a call do not "
                    + "depend on the launch limit). Not used with referenceGemm.",
            16);

    public static final Setting<Boolean> GATHER_ROWS = Settings.booleanSetting("sparkmoe.gpu.gatherRows",
            "FP8 grouped path: quantize each token's row once (rows in token order; for models with a shared expert that is "
                    + "the shared expert's input) and let the routed GEMM1's producer gather each expert's rows from it with "
                    + "16-byte cp.async copies through a slot -> token map, instead of the dispatch writing every token's e4m3 "
                    + "row k times into the expert-contiguous layout (docs/kernel-notes.md v6). Production sm_90a GEMMs with "
                    + "promotion every 128 only (refused with referenceGemm, fp8PromotionInterval=32 and on GPUs other than "
                    + "compute capability 9.0); ignored for BF16. Results are bitwise the same. Measured on the H200 (session 6, "
                    + "DeepSeek-V3 FP8): against the static GEMM1 order 2-7 % faster at 4096 tokens and neutral at 16384; "
                    + "against the default dynamic-unit GEMM1 (gemmDynamicUnits) the gathering GEMM1 is slower (2.87 vs 2.58 ms "
                    + "at 4096 tokens, 8.33 vs 7.76 at 16384) by more than the scatter it saves, so off by default. Its producer "
                    + "omits the async-proxy fence between the cp.async writes and wgmma's reads (as CUTLASS's SM90 cp.async + "
                    + "GMMA mainloop; docs/kernel-notes.md v6.1): a documented risk, not observed in the tests.",
            false);
}
