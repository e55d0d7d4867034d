package dev.sparkmoe.gpu;

import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.checkpoint.MoeLayerWeights.ExpertWeights;
import dev.sparkmoe.checkpoint.WeightMatrix;
import dev.sparkmoe.cuda.CudaContext;
import dev.sparkmoe.cuda.CudaFunction.Dim;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;
import dev.sparkmoe.kernels.WeightPacking;
import dev.sparkmoe.kernels.WeightPacking.Format;
import dev.sparkmoe.model.MoeConfig;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.List;

/**
 * One MoE layer's weights resident on the GPU, in the GEMMs' packed layouts (WeightPacking): the router as fp32
 * [E (+1 for Qwen2-MoE's shared gate row), H], DeepSeek's selection bias, every routed expert's W1 ([gate; up]
 * interleaved) and W2, and the shared expert as a group of one. FP8 adds the 128x128 block scales.
 */
final class DeviceWeights implements AutoCloseable {
    final Format format;
    final int routerRows;
    final DeviceBuffer router;
    final DeviceBuffer bias;
    final DeviceBuffer w1, w1Scale, w2, w2Scale;
    final DeviceBuffer sharedW1, sharedW1Scale, sharedW2, sharedW2Scale;
    private final OwnedBuffers owned;

    private DeviceWeights(Format format, int routerRows, OwnedBuffers owned, DeviceBuffer... b) {
        this.format = format;
        this.routerRows = routerRows;
        this.owned = owned;
        router = b[0]; bias = b[1]; w1 = b[2]; w1Scale = b[3]; w2 = b[4]; w2Scale = b[5];
        sharedW1 = b[6]; sharedW1Scale = b[7]; sharedW2 = b[8]; sharedW2Scale = b[9];
    }

    /** Bytes of the expert weights and scales on the device (what a layer reads at most once per call). */
    long expertBytes() {
        long n = 0;
        for (DeviceBuffer d : new DeviceBuffer[] {w1, w1Scale, w2, w2Scale, sharedW1, sharedW1Scale, sharedW2, sharedW2Scale}) {
            if (d != null) n += d.byteSize();
        }
        return n;
    }

    /** Packs and uploads the layer's weights (one expert at a time through a reused host buffer). */
    static DeviceWeights upload(CudaContext ctx, MoeLayerWeights w, Format f) {
        MoeConfig c = w.config();
        int h = c.hiddenSize(), inter = c.expertIntermediateSize(), e = c.numExperts();
        OwnedBuffers owned = new OwnedBuffers(ctx);
        try {
            int routerRows = e + (w.sharedGate() != null ? 1 : 0);
            float[] r = new float[routerRows * h];
            System.arraycopy(w.router().toFloats(), 0, r, 0, e * h);
            if (w.sharedGate() != null) System.arraycopy(w.sharedGate().toFloats(), 0, r, e * h, h);
            DeviceBuffer router = owned.buffer("router", r.length, Float.BYTES);
            router.upload(r);
            DeviceBuffer bias = null;
            if (w.selectionBias() != null) {
                bias = owned.buffer("selection bias", e, Float.BYTES);
                bias.upload(w.selectionBias());
            }
            DeviceBuffer[] routed = uploadExperts(owned, "experts", w.experts(), inter, h, f);
            DeviceBuffer[] shared = new DeviceBuffer[4];
            if (w.shared() != null) shared = uploadExperts(owned, "shared expert", List.of(w.shared()), c.sharedIntermediateSize(), h, f);
            return new DeviceWeights(f, routerRows, owned, router, bias, routed[0], routed[1], routed[2], routed[3],
                    shared[0], shared[1], shared[2], shared[3]);
        } catch (RuntimeException ex) {
            owned.closeAfter(ex);
            throw ex;
        }
    }

    private static DeviceBuffer[] uploadExperts(OwnedBuffers owned, String what, List<ExpertWeights> xs,
                                                int inter, int h, Format f) {
        int n = xs.size();
        long w1b = WeightPacking.w1Bytes(inter, h, f), w2b = WeightPacking.w2Bytes(inter, h, f);
        DeviceBuffer w1 = owned.buffer(what + " W1", n * w1b, 1);
        DeviceBuffer w2 = owned.buffer(what + " W2", n * w2b, 1);
        DeviceBuffer s1 = null, s2 = null;
        int s1n = WeightPacking.w1ScaleFloats(inter, h), s2n = WeightPacking.w2ScaleFloats(inter, h);
        if (f == Format.FP8) {
            s1 = owned.buffer(what + " W1 scales", (long) n * s1n, Float.BYTES);
            s2 = owned.buffer(what + " W2 scales", (long) n * s2n, Float.BYTES);
        }
        ByteBuffer hb1 = ByteBuffer.allocateDirect(Math.toIntExact(w1b)).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer hb2 = ByteBuffer.allocateDirect(Math.toIntExact(w2b)).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer sb1 = ByteBuffer.allocateDirect(4 * s1n).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer sb2 = ByteBuffer.allocateDirect(4 * s2n).order(ByteOrder.LITTLE_ENDIAN);
        for (int x = 0; x < n; x++) {
            ExpertWeights ew = xs.get(x);
            requireDims(ew.gate(), inter, h);
            hb1.clear(); hb2.clear(); sb1.clear(); sb2.clear();
            FloatBuffer f1 = f == Format.FP8 ? sb1.asFloatBuffer() : null, f2 = f == Format.FP8 ? sb2.asFloatBuffer() : null;
            WeightPacking.packW1(ew.gate(), ew.up(), f, hb1, f1);
            WeightPacking.packW2(ew.down(), f, hb2, f2);
            hb1.clear(); hb2.clear();
            w1.upload(hb1, x * w1b);
            w2.upload(hb2, x * w2b);
            if (f == Format.FP8) {
                sb1.clear(); sb2.clear();
                s1.upload(sb1, 4L * x * s1n);
                s2.upload(sb2, 4L * x * s2n);
            }
        }
        return new DeviceBuffer[] {w1, s1, w2, s2};
    }

    private static void requireDims(WeightMatrix gate, int inter, int h) {
        if (gate.rows() != inter || gate.cols() != h) {
            throw new IllegalArgumentException("expert weight '" + gate.name() + "' is " + gate.rows() + "x" + gate.cols() + ", expected " + inter + "x" + h);
        }
    }

    /**
     * Random weights of a config's shapes generated on the device (benchmarks of real shapes): N(0, 1/H) router (values
     * bf16 holds exactly),
     * N(0, 1/K) projections; FP8 as e4m3 codes of N(0,1)*64 with block scales 1/(64 sqrt K). Values are random in the
     * packed layout directly, which is as good as packing random values.
     */
    static DeviceWeights synthetic(CudaContext ctx, CudaModule m, CudaStream s, MoeConfig c, Format f, long seed) {
        int h = c.hiddenSize(), inter = c.expertIntermediateSize(), e = c.numExperts();
        OwnedBuffers owned = new OwnedBuffers(ctx);
        try {
            int routerRows = e + (c.sharedExpertGated() ? 1 : 0);
            DeviceBuffer router = owned.buffer("router", (long) routerRows * h, Float.BYTES);
            // bf16 values, as the checkpoints of every family store their routers (and the certified router needs)
            fill(m, s, "moe_fill_normal_f32_bf16_exact", router, router.count(), seed, (float) (1 / Math.sqrt(h)));
            DeviceBuffer bias = null;
            if (c.hasSelectionBias()) {
                bias = owned.buffer("selection bias", e, Float.BYTES);
                fillNormalF32(m, s, bias, seed + 1, 0.01f);
            }
            DeviceBuffer[] routed = syntheticExperts(m, s, owned, "experts", e, inter, h, f, seed + 2);
            DeviceBuffer[] shared = new DeviceBuffer[4];
            if (c.hasSharedExpert()) shared = syntheticExperts(m, s, owned, "shared expert", 1, c.sharedIntermediateSize(), h, f, seed + 10);
            s.synchronize("synthetic weights");
            return new DeviceWeights(f, routerRows, owned, router, bias, routed[0], routed[1], routed[2], routed[3],
                    shared[0], shared[1], shared[2], shared[3]);
        } catch (RuntimeException ex) {
            owned.closeAfter(ex);
            throw ex;
        }
    }

    private static DeviceBuffer[] syntheticExperts(CudaModule m, CudaStream s, OwnedBuffers owned, String what,
                                                   int n, int inter, int h, Format f, long seed) {
        long w1b = WeightPacking.w1Bytes(inter, h, f), w2b = WeightPacking.w2Bytes(inter, h, f);
        DeviceBuffer w1 = owned.buffer(what + " W1", n * w1b, 1);
        DeviceBuffer w2 = owned.buffer(what + " W2", n * w2b, 1);
        DeviceBuffer s1 = null, s2 = null;
        if (f == Format.FP8) {
            s1 = owned.buffer(what + " W1 scales", (long) n * WeightPacking.w1ScaleFloats(inter, h), Float.BYTES);
            s2 = owned.buffer(what + " W2 scales", (long) n * WeightPacking.w2ScaleFloats(inter, h), Float.BYTES);
            fill(m, s, "moe_fill_normal_e4m3", w1, w1.count(), seed);
            fill(m, s, "moe_fill_normal_e4m3", w2, w2.count(), seed + 1);
            fillConst(m, s, s1, (float) (1 / (64 * Math.sqrt(h))));
            fillConst(m, s, s2, (float) (1 / (64 * Math.sqrt(inter))));
        } else {
            fill(m, s, "moe_fill_normal_bf16", w1, w1.count() / 2, seed, (float) (1 / Math.sqrt(h)));
            fill(m, s, "moe_fill_normal_bf16", w2, w2.count() / 2, seed + 1, (float) (1 / Math.sqrt(inter)));
        }
        return new DeviceBuffer[] {w1, s1, w2, s2};
    }

    static void fillNormalF32(CudaModule m, CudaStream s, DeviceBuffer b, long seed, float std) {
        fill(m, s, "moe_fill_normal_f32", b, b.count(), seed, std);
    }

    private static void fillConst(CudaModule m, CudaStream s, DeviceBuffer b, float v) {
        m.function("moe_fill_f32").launch(s, Dim.of(2048), Dim.of(256), 0, b, b.count(), v);
    }

    private static void fill(CudaModule m, CudaStream s, String kernel, DeviceBuffer b, long n, long seed, Object... more) {
        Object[] args = new Object[3 + more.length];
        args[0] = b; args[1] = n; args[2] = seed;
        System.arraycopy(more, 0, args, 3, more.length);
        m.function(kernel).launch(s, Dim.of(4096), Dim.of(256), 0, args);
    }

    @Override
    public void close() { owned.close(); }
}
