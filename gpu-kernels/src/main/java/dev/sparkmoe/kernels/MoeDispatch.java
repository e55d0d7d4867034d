package dev.sparkmoe.kernels;

import dev.sparkmoe.cuda.CudaFunction;
import dev.sparkmoe.cuda.CudaFunction.Dim;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;

import static dev.sparkmoe.kernels.MoeRoute.ceilDiv;
import static dev.sparkmoe.kernels.MoeRoute.nullable;

/**
 * Launcher of moe_dispatch.cu: per-expert counts, the padded expert-contiguous layout (block_expert, num_row_blocks on
 * the device), the token -> row map and the scatter of token rows (BF16, or FP8 with 1x128 scales), in the GEMM's tile-packed activation layout.
 */
public final class MoeDispatch {
    /** Rows of one GEMM M block (MOE_BLOCK_M): every expert's rows start at a multiple of it. */
    public static final int BLOCK_M = 128;
    /**
     * The most chunks of routing entries a layout launch splits its entries into (one warp each in the count and assign
     * passes; the scan pass reads every chunk's counts per expert).
     */
    public static final int MAX_CHUNKS = 128;
    /** Routing entries per chunk below which a launch uses fewer chunks instead of smaller ones. */
    static final int MIN_CHUNK_ENTRIES = 256;
    static final int WARPS = 4;
    /** Threads of the scatter kernels (SCATTER_THREADS): one CTA per token. */
    static final int SCATTER_THREADS = 256;

    private final CudaFunction count;
    private final CudaFunction scan;
    private final CudaFunction assign;
    private final CudaFunction assignTokens;
    private final CudaFunction pad;
    private final CudaFunction rowsBf16;
    private final CudaFunction rowsFp8;

    /** The kernel that writes token rows into their expert rows ({@code sparkmoe.gpu.scatterKernel}); bitwise the same results. */
    public enum ScatterKernel {
        /** A CTA loads its whole token row first, then writes it row by row (offsets once per destination row). */
        PREFETCH(""),
        /** Session 3: one 128- (FP8) or 256-channel (BF16) piece per warp at a time. */
        BLOCKWISE("_blockwise");

        final String suffix;

        ScatterKernel(String suffix) { this.suffix = suffix; }

        /** The kernel of a {@code sparkmoe.gpu.scatterKernel} value: prefetch or blockwise. */
        public static ScatterKernel parse(String s) {
            for (ScatterKernel k : values()) if (k.name().equalsIgnoreCase(s)) return k;
            throw new IllegalArgumentException("scatter kernel must be prefetch or blockwise, got '" + s + "'");
        }
    }

    public MoeDispatch(CudaModule module) {
        this(module, ScatterKernel.PREFETCH);
    }

    public MoeDispatch(CudaModule module, ScatterKernel scatter) {
        if (scatter == null) throw new IllegalArgumentException("scatter kernel must be given");
        count = module.function("moe_dispatch_count");
        scan = module.function("moe_dispatch_scan");
        assign = module.function("moe_dispatch_assign");
        assignTokens = module.function("moe_dispatch_assign_tokens");
        pad = module.function("moe_dispatch_pad");
        rowsBf16 = module.function("moe_dispatch_rows_bf16" + scatter.suffix);
        rowsFp8 = module.function("moe_dispatch_rows_fp8" + scatter.suffix);
    }

    /**
     * Chunks of routing entries for up to {@code tokens} tokens of {@code topK} choices: one per
     * {@value #MIN_CHUNK_ENTRIES} entries, at most {@value #MAX_CHUNKS}; non-decreasing in {@code tokens}, so a buffer
     * sized for a capacity serves every smaller launch.
     */
    public static int chunks(int tokens, int topK) {
        return Math.max(1, Math.min(MAX_CHUNKS, ceilDiv((long) tokens * topK, MIN_CHUNK_ENTRIES)));
    }

    /**
     * Routing entries per chunk (a multiple of 32) of a launch sized for {@code tokens}: whatever the device token
     * count, it splits into at most {@link #chunks} chunks. The slot order does not depend on it.
     */
    public static int chunkEntries(int tokens, int topK) {
        return ceilDiv(ceilDiv((long) tokens * topK, chunks(tokens, topK)), 32) * 32;
    }

    /** The most 128-row blocks the layout can need: every expert's padding plus the entries themselves. */
    public static int maxRowBlocks(int tokens, int topK, int experts) {
        long entries = (long) tokens * topK;
        // sum_e ceil(c_e/128) <= sum_e (c_e + 127)/128 and at most one block per entry
        long bound = Math.min(ceilDiv(entries, BLOCK_M) + (long) experts, entries);
        return Math.toIntExact(Math.max(bound, 1));
    }

    /**
     * Counts, scan and row assignment: everything but the data; and (when {@code tokenOfSlot} != null)
     * {@code tokenOfSlot[row]} = the token of each routed row (int32[maxRowBlocks * 128]; only real rows are written):
     * the map by which the gathering GEMM1 reads the once-quantized tokens.
     */
    public void layout(CudaStream s, DeviceBuffer topkExpert, DeviceBuffer topkWeight, DeviceBuffer chunkCounts,
                        DeviceBuffer chunkBase, DeviceBuffer expertCount, DeviceBuffer expertStart, DeviceBuffer blockExpert,
                        DeviceBuffer numRowBlocks, DeviceBuffer slotOfEntry, DeviceBuffer rowWeight, DeviceBuffer tokenOfSlot,
                        DeviceBuffer numTokens, int tokenCapacity, int topK, int experts, int maxRowBlocks) {
        int chunks = chunks(tokenCapacity, topK), chunk = chunkEntries(tokenCapacity, topK);
        long needed = (long) chunks * experts;
        if (chunkCounts.count() < needed || chunkBase.count() < needed) {
            throw new IllegalArgumentException("dispatch layout for " + tokenCapacity + " tokens needs " + needed + " chunk counts, '"
                    + chunkCounts.name() + "' holds " + chunkCounts.count() + ", '" + chunkBase.name() + "' " + chunkBase.count());
        }
        int grid = ceilDiv(chunks, WARPS);
        int smem = WARPS * experts * 4;
        count.launch(s, Dim.of(grid), Dim.of(WARPS * 32), smem, topkExpert, chunkCounts, numTokens, topK, experts, chunk);
        scan.launch(s, Dim.of(1), Dim.of(ceilDiv(experts, 32) * 32), 0, chunkCounts, chunkBase, expertCount, expertStart,
                blockExpert, numRowBlocks, numTokens, topK, experts, maxRowBlocks, chunk);
        if (tokenOfSlot == null) {
            assign.launch(s, Dim.of(grid), Dim.of(WARPS * 32), smem, topkExpert, topkWeight, chunkBase, expertStart,
                    slotOfEntry, rowWeight, numTokens, topK, experts, chunk);
        } else {
            assignTokens.launch(s, Dim.of(grid), Dim.of(WARPS * 32), smem, topkExpert, topkWeight, chunkBase, expertStart,
                    slotOfEntry, rowWeight, numTokens, topK, experts, chunk, tokenOfSlot);
        }
    }

    /**
     * Each expert's padding rows (its last block past its tokens): zeroes their routing weights and (FP8, {@code aScale}
     * != null) activation scales; the rows keep stale values, which only padding rows' outputs see. A gathering GEMM1
     * (which zero-fills the rows it gathers) passes no scales.
     */
    public void padExperts(CudaStream s, DeviceBuffer expertCount, DeviceBuffer expertStart, DeviceBuffer aScale,
                           DeviceBuffer rowWeight, DeviceBuffer numTokens, int hidden, int experts) {
        pad.launch(s, Dim.of(experts), Dim.of(256), 0, expertCount, expertStart, nullable(aScale), rowWeight, 0L, numTokens,
                hidden, experts, 0L);
    }

    /**
     * The shared expert's input rows from the token count to the end of their last 128-row block: zeroes their scales
     * (FP8) and writes its row-block count into {@code sharedNumBlocks}. Needs no routing result, so the shared expert's
     * branch can run it on its own stream.
     */
    public void padShared(CudaStream s, DeviceBuffer aSharedScale, DeviceBuffer sharedNumBlocks, DeviceBuffer numTokens, int hidden) {
        pad.launch(s, Dim.of(1), Dim.of(256), 0, 0L, 0L, 0L, 0L, nullable(aSharedScale), numTokens, hidden, 0, sharedNumBlocks);
    }

    /**
     * Scatter of the fp32 input rows as bf16 into their k rows (and the shared expert's input when aShared != null);
     * {@code topK} 0 writes only the shared expert's input.
     */
    public void rowsBf16(CudaStream s, DeviceBuffer x, DeviceBuffer slotOfEntry, DeviceBuffer a, DeviceBuffer aShared,
                         DeviceBuffer numTokens, int tokenCapacity, int hidden, int topK) {
        rowsBf16.launch(s, Dim.of(tokenCapacity), Dim.of(SCATTER_THREADS), 0, x, slotOfEntry, a, nullable(aShared),
                numTokens, hidden, topK);
    }

    /**
     * Scatter with FP8 quantization per token per 128 channels (values and scales in the GEMM's activation layout);
     * {@code topK} 0 writes only the shared expert's input (aShared, aSharedScale).
     */
    public void rowsFp8(CudaStream s, DeviceBuffer x, DeviceBuffer slotOfEntry, DeviceBuffer a, DeviceBuffer aScale,
                        DeviceBuffer aShared, DeviceBuffer aSharedScale, DeviceBuffer numTokens, int tokenCapacity,
                        int hidden, int topK) {
        rowsFp8.launch(s, Dim.of(tokenCapacity), Dim.of(SCATTER_THREADS), 0, x, slotOfEntry, a, aScale,
                nullable(aShared), nullable(aSharedScale), numTokens, hidden, topK);
    }
}
