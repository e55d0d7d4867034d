package dev.sparkmoe.gpu;

import dev.sparkmoe.cuda.CudaContext;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;
import dev.sparkmoe.kernels.MoeDecode;
import dev.sparkmoe.kernels.WeightPacking.Format;
import dev.sparkmoe.model.MoeConfig;

/**
 * The device buffers of the small-batch path ({@link MoeDecode}) for launches of up to {@code tile} tokens: router
 * partial sums and logits, GEMM1's activations, the plan, the SwiGLU rows (per routing entry), the expert rows Y and
 * the counters (zeroed here once; the kernels leave them zero). Input, token count, top-k, expert counts, shared row
 * weights and the output stay in the {@link LayerWorkspace}. Made once per engine (a few MB), so graphs keep its
 * addresses.
 */
final class DecodeWorkspace implements AutoCloseable {
    final int tile;
    final DeviceBuffer partial, logits, act, actScale, groupCounters, routeCounter, h32, h, hScale, sharedH32, sharedH, sharedHScale,
            gemm1Counters, y, sharedY;
    final MoeDecode.Plan plan;
    private final OwnedBuffers owned;

    DecodeWorkspace(CudaContext ctx, CudaStream stream, MoeConfig c, Format f, int routerRows, int maxTokens) {
        tile = MoeDecode.tokenTile(maxTokens);
        owned = new OwnedBuffers(ctx);
        int h = c.hiddenSize(), inter = c.expertIntermediateSize(), k = c.topK(), esz = f.bytes();
        boolean fp8 = f == Format.FP8, shared = c.hasSharedExpert();
        int si = shared ? c.sharedIntermediateSize() : 0;
        long entries = (long) tile * k;
        int used = MoeDecode.maxUsedExperts(tile, c);
        try {
            partial = buf("decode router partial sums", MoeDecode.partialDoubles(tile, h, routerRows), 8);
            logits = buf("decode router logits", (long) tile * routerRows, 4);
            act = buf("decode GEMM1 activations", (long) tile * h, esz);
            actScale = fp8 ? buf("decode GEMM1 activation scales", (long) tile * (h / 128), 4) : null;
            groupCounters = buf("decode router row-group counters", MoeDecode.logitGroups(routerRows), 4);
            routeCounter = buf("decode route counter", 1, 4);
            plan = new MoeDecode.Plan(buf("decode used experts", 1, 4), buf("decode used expert ids", used, 4),
                    buf("decode used expert offsets", used, 4), buf("decode used expert counts", used, 4),
                    buf("decode entries by expert", entries, 4));
            h32 = fp8 ? buf("decode SwiGLU rows (fp32)", entries * inter, 4) : null;
            this.h = buf("decode SwiGLU rows", entries * inter, esz);
            hScale = fp8 ? buf("decode SwiGLU scales", entries * (inter / 128), 4) : null;
            sharedH32 = fp8 && shared ? buf("decode shared SwiGLU rows (fp32)", (long) tile * si, 4) : null;
            sharedH = shared ? buf("decode shared SwiGLU rows", (long) tile * si, esz) : null;
            sharedHScale = fp8 && shared ? buf("decode shared SwiGLU scales", (long) tile * (si / 128), 4) : null;
            gemm1Counters = buf("decode GEMM1 block counters", MoeDecode.gemm1Counters(tile, c), 4);
            y = buf("decode Y (weighted expert rows)", entries * h, 4);
            sharedY = shared ? buf("decode Y (shared)", (long) tile * h, 4) : null;
            for (DeviceBuffer b : new DeviceBuffer[] {groupCounters, routeCounter, gemm1Counters}) b.memset32(0, stream);
        } catch (RuntimeException ex) {
            owned.closeAfter(ex);
            throw ex;
        }
    }

    private DeviceBuffer buf(String name, long count, int esz) { return owned.buffer(name, Math.max(1, count), esz); }

    @Override
    public void close() { owned.close(); }
}
