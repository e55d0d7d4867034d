package dev.sparkmoe.checkpoint;

import dev.sparkmoe.model.ModelFamily;
import dev.sparkmoe.model.ModelFamily.Projection;
import dev.sparkmoe.model.MoeConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * The weights of one MoE layer, memory-mapped from a checkpoint and checked against the config: the router
 * [E, H], DeepSeek-V3's selection bias [E], every routed expert's SwiGLU projections, and the shared expert(s).
 */
public record MoeLayerWeights(
        MoeConfig config,
        int layer,
        WeightMatrix router,
        float[] selectionBias,
        List<ExpertWeights> experts,
        ExpertWeights shared,
        WeightMatrix sharedGate) {

    /** One SwiGLU expert: down(silu(gate·x) * (up·x)); gate and up are [I, H], down is [H, I]. */
    public record ExpertWeights(WeightMatrix gate, WeightMatrix up, WeightMatrix down) {
        public int intermediate() { return gate.rows(); }
    }

    public static MoeLayerWeights load(Checkpoint ckpt, int layer) {
        MoeConfig c = ckpt.config();
        c.requireMoeLayer(layer);
        ModelFamily f = c.family();
        int h = c.hiddenSize(), e = c.numExperts();
        String routerName = f.routerWeight(layer);
        Tensor r = ckpt.tensor(routerName).requireShape(e, h);
        if (r.dtype() == DType.F8_E4M3) throw new CheckpointException("router '" + routerName + "' is F8_E4M3; routers must be F32, BF16 or F16");
        WeightMatrix router = WeightMatrix.of(r, null, 0, 0);
        float[] bias = null;
        if (c.hasSelectionBias()) {
            bias = ckpt.tensor(f.routerBias(layer)).requireShape(e).toFloats();
        }
        List<ExpertWeights> experts = new ArrayList<>(e);
        for (int x = 0; x < e; x++) {
            experts.add(expert(ckpt, c, f.expertWeight(layer, x, Projection.GATE), f.expertWeight(layer, x, Projection.UP),
                    f.expertWeight(layer, x, Projection.DOWN), c.expertIntermediateSize()));
        }
        ExpertWeights shared = null;
        WeightMatrix sharedGate = null;
        if (c.hasSharedExpert()) {
            shared = expert(ckpt, c, f.sharedExpertWeight(layer, Projection.GATE), f.sharedExpertWeight(layer, Projection.UP),
                    f.sharedExpertWeight(layer, Projection.DOWN), c.sharedIntermediateSize());
            if (c.sharedExpertGated()) {
                Tensor g = ckpt.tensor(f.sharedExpertGateWeight(layer)).requireShape(1, h);
                sharedGate = WeightMatrix.of(g, null, 0, 0);
            }
        }
        return new MoeLayerWeights(c, layer, router, bias, List.copyOf(experts), shared, sharedGate);
    }

    private static ExpertWeights expert(Checkpoint ckpt, MoeConfig c, String gate, String up, String down, int inter) {
        int h = c.hiddenSize();
        int[] block = c.weightBlockSize();
        return new ExpertWeights(
                WeightMatrix.load(ckpt, gate, inter, h, block),
                WeightMatrix.load(ckpt, up, inter, h, block),
                WeightMatrix.load(ckpt, down, h, inter, block));
    }

    /** Bytes of all tensors of this layer as stored (weights plus scales). */
    public long storedBytes() {
        long b = bytes(router) + (selectionBias == null ? 0 : 4L * selectionBias.length) + (sharedGate == null ? 0 : bytes(sharedGate));
        for (ExpertWeights x : experts) b += bytes(x);
        if (shared != null) b += bytes(shared);
        return b;
    }

    private static long bytes(ExpertWeights x) { return bytes(x.gate()) + bytes(x.up()) + bytes(x.down()); }

    private static long bytes(WeightMatrix m) {
        long b = m.weight().numel() * m.dtype().bytes();
        if (m.scaleInv() != null) b += m.scaleInv().numel() * 4;
        return b;
    }
}
