package dev.sparkmoe.gpu;

import dev.sparkmoe.cuda.CudaContext;
import dev.sparkmoe.cuda.DeviceBuffer;
import dev.sparkmoe.kernels.MoeDispatch;
import dev.sparkmoe.kernels.WeightPacking.Format;
import dev.sparkmoe.model.MoeConfig;


/**
 * The device buffers of one layer launch of up to {@code capacity} tokens (pinned host staging is per caller:
 * {@link StagingSlot}). Graphs captured on a workspace bake in its addresses, so the engine keeps one workspace (grown,
 * with its graphs recaptured, when a larger bucket is first needed). With {@code copyStaging} it also holds two input
 * and two output buffers of [capacity, H] fp32 that the copy streams of {@link ForwardMode#OVERLAPPED} fill and drain
 * while the layer runs on x / out. Sizes are pure functions of the config, tested without a GPU ({@link Sizes}).
 */
final class LayerWorkspace implements AutoCloseable {
    /** Buffer sizes (elements) for a config, precision and capacity. */
    record Sizes(int capacity, int chunks, int maxRowBlocks, long routedRows, int sharedRowBlocks, long sharedRows) {
        static Sizes of(MoeConfig c, int capacity) {
            int k = c.topK();
            int maxRowBlocks = MoeDispatch.maxRowBlocks(capacity, k, c.numExperts());
            int sharedBlocks = (capacity + MoeDispatch.BLOCK_M - 1) / MoeDispatch.BLOCK_M;
            return new Sizes(capacity, MoeDispatch.chunks(capacity, k), maxRowBlocks, (long) maxRowBlocks * MoeDispatch.BLOCK_M,
                    c.hasSharedExpert() ? sharedBlocks : 0, c.hasSharedExpert() ? (long) sharedBlocks * MoeDispatch.BLOCK_M : 0);
        }
    }

    final Sizes sizes;
    /** The certified router's per-token partial sums of squares of x, its fallback token list and count. */
    final DeviceBuffer routerSquares, routerFallbackTokens, routerFallbackCount;
    final DeviceBuffer x, numTokens, logits, routerPartial, topkExpert, topkWeight, chunkCounts, chunkBase, expertCount, expertStart,
            blockExpert, numRowBlocks, slotOfEntry, rowWeight, a, aScale, hmid, hmidScale, y, out;
    final DeviceBuffer sharedRowWeight, sharedNumBlocks, sharedBlockExpert, aShared, aSharedScale, hShared, hSharedScale, yShared;
    /**
     * {@link GpuEngineSettings#GATHER_ROWS} (FP8 only, else null): the token of each routed row (int32[routedRows]) and
     * the activations quantized once per token that the gathering GEMM1 reads through it (rows = tokens, padded to 128,
     * in the activation layouts): the shared expert's input when the model has one, else buffers of their own.
     */
    final DeviceBuffer tokenOfSlot, aTokens, aTokensScale;
    /** Device staging of the copy streams (double-buffered), or null without copy staging. */
    final DeviceBuffer[] stagingIn, stagingOut;
    private final OwnedBuffers owned;

    /** @param yBytes element size of Y and Y shared: 4 (fp32) or 2 (bf16, {@link GpuEngineSettings#EXPERT_OUTPUT_PRECISION}) */
    LayerWorkspace(CudaContext ctx, MoeConfig c, Format f, int routerRows, int capacity, int smCount, boolean copyStaging, int yBytes) {
        this(ctx, c, f, routerRows, capacity, smCount, copyStaging, yBytes, false);
    }

    /** @param gatherRows FP8: hold the token map and the once-quantized tokens of {@link GpuEngineSettings#GATHER_ROWS} */
    LayerWorkspace(CudaContext ctx, MoeConfig c, Format f, int routerRows, int capacity, int smCount, boolean copyStaging, int yBytes,
                   boolean gatherRows) {
        if (yBytes != 4 && yBytes != 2) throw new IllegalArgumentException("Y element size must be 4 (fp32) or 2 (bf16), got " + yBytes);
        owned = new OwnedBuffers(ctx);
        sizes = Sizes.of(c, capacity);
        int h = c.hiddenSize(), inter = c.expertIntermediateSize(), e = c.numExperts(), k = c.topK(), esz = f.bytes();
        long rows = sizes.routedRows();
        boolean fp8 = f == Format.FP8;
        try {
            x = f32("x", (long) capacity * h);
            numTokens = i32("num_tokens", 1);
            logits = f32("router logits", (long) capacity * routerRows);
            routerPartial = buf("router split-K partial sums", dev.sparkmoe.kernels.MoeRoute.partialDoubles(smCount), 8);
            routerSquares = f32("router x squares (certified)", dev.sparkmoe.kernels.MoeRoute.certifiedSquareFloats(capacity, h));
            routerFallbackTokens = i32("router fallback tokens (certified)", capacity);
            routerFallbackCount = i32("router fallback count (certified)", 1);
            topkExpert = i32("topk expert", (long) capacity * k);
            topkWeight = f32("topk weight", (long) capacity * k);
            chunkCounts = i32("chunk counts", (long) sizes.chunks() * e);
            chunkBase = i32("chunk base", (long) sizes.chunks() * e);
            expertCount = i32("expert count", e);
            expertStart = i32("expert start", e);
            blockExpert = i32("block expert", sizes.maxRowBlocks());
            numRowBlocks = i32("num row blocks", 1);
            slotOfEntry = i32("slot of entry", (long) capacity * k);
            rowWeight = f32("row weight", rows);
            a = buf("A (dispatched)", rows * h, esz);
            aScale = fp8 ? f32("A scales", rows * (h / 128)) : null;
            hmid = buf("SwiGLU out", rows * inter, esz);
            hmidScale = fp8 ? f32("SwiGLU out scales", rows * (inter / 128)) : null;
            y = buf("Y (weighted expert rows)", rows * h, yBytes);
            out = f32("out", (long) capacity * h);
            if (c.hasSharedExpert()) {
                long sr = sizes.sharedRows();
                int si = c.sharedIntermediateSize();
                sharedRowWeight = f32("shared row weight", sr);
                sharedNumBlocks = i32("shared num blocks", 1);
                sharedBlockExpert = i32("shared block expert", sizes.sharedRowBlocks());
                aShared = buf("A (shared)", sr * h, esz);
                aSharedScale = fp8 ? f32("A (shared) scales", sr * (h / 128)) : null;
                hShared = buf("shared SwiGLU out", sr * si, esz);
                hSharedScale = fp8 ? f32("shared SwiGLU out scales", sr * (si / 128)) : null;
                yShared = buf("Y (shared)", sr * h, yBytes);
                sharedBlockExpert.upload(new int[sizes.sharedRowBlocks()]); // every block is "expert" 0 of a group of one
                // gated (Qwen2-MoE): the route kernel writes the first T rows' gates, rows past them keep weight 0;
                // ungated: the weight is 1 for good (rows past T are zero rows, their outputs never read), so the
                // shared branch of the layer needs nothing from routing
                float[] w = new float[Math.toIntExact(sr)];
                if (!c.sharedExpertGated()) java.util.Arrays.fill(w, 1f);
                sharedRowWeight.upload(w);
            } else {
                sharedRowWeight = sharedNumBlocks = sharedBlockExpert = aShared = aSharedScale = hShared = hSharedScale = yShared = null;
            }
            if (gatherRows && fp8) {
                tokenOfSlot = i32("token of slot", rows);
                if (c.hasSharedExpert()) {
                    aTokens = aShared;
                    aTokensScale = aSharedScale;
                } else {
                    long tr = (long) ((capacity + MoeDispatch.BLOCK_M - 1) / MoeDispatch.BLOCK_M) * MoeDispatch.BLOCK_M;
                    aTokens = buf("A (tokens, quantized once)", tr * h, 1);
                    aTokensScale = f32("A (tokens) scales", tr * (h / 128));
                }
            } else {
                tokenOfSlot = aTokens = aTokensScale = null;
            }
            if (copyStaging) {
                stagingIn = new DeviceBuffer[] {f32("x staging 0", (long) capacity * h), f32("x staging 1", (long) capacity * h)};
                stagingOut = new DeviceBuffer[] {f32("out staging 0", (long) capacity * h), f32("out staging 1", (long) capacity * h)};
            } else {
                stagingIn = stagingOut = null;
            }
        } catch (RuntimeException ex) {
            owned.closeAfter(ex);
            throw ex;
        }
    }

    int capacity() { return sizes.capacity(); }

    private DeviceBuffer f32(String n, long count) { return buf(n, count, 4); }

    private DeviceBuffer i32(String n, long count) { return buf(n, count, 4); }

    private DeviceBuffer buf(String n, long count, int esz) { return owned.buffer(n, count, esz); }

    /** Device bytes held. */
    long deviceBytes() { return owned.deviceBytes(); }

    @Override
    public void close() { owned.close(); }
}
