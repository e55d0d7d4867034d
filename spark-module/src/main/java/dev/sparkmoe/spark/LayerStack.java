package dev.sparkmoe.spark;

import dev.sparkmoe.engine.MoeEngine;

import java.util.List;

/**
 * MoE layers applied in sequence, each as {@code x <- moe(x)} or, with the residual, {@code x <- x + moe(x)}.
 * Holds no engine of its own: the engines belong to the {@link EngineRegistry}. Thread-safe (buffers are per call).
 */
public final class LayerStack {
    private final List<MoeEngine> engines;
    private final boolean residual;
    private final int hidden;

    public LayerStack(List<MoeEngine> engines, boolean residual) {
        if (engines.isEmpty()) throw new MoeSparkException("a layer stack needs at least one layer");
        this.hidden = engines.get(0).config().hiddenSize();
        for (MoeEngine e : engines) {
            if (e.config().hiddenSize() != hidden) {
                throw new MoeSparkException("layer " + e.layer() + " has hidden size " + e.config().hiddenSize() + ", not " + hidden);
            }
        }
        this.engines = List.copyOf(engines);
        this.residual = residual;
    }

    /** The stack for {@code spec} on this JVM, loading engines once per JVM. */
    public static LayerStack open(MoeLayerSpec spec) {
        return new LayerStack(EngineRegistry.acquire(spec), spec.residual());
    }

    public int hiddenSize() { return hidden; }

    public String deviceDescription() { return engines.get(0).deviceDescription(); }

    /** {@code out[0, tokens*H)} = the stack applied to {@code x[0, tokens*H)}; {@code x} (a different array) is left unchanged. */
    public void forward(float[] x, int tokens, float[] out) {
        if (x == out) throw new MoeSparkException("layer stack input and output must be different arrays");
        int n = Math.multiplyExact(tokens, hidden);
        float[] a = null, b = null;
        float[] cur = x;
        for (int i = 0; i < engines.size(); i++) {
            float[] dst;
            if (i == engines.size() - 1) dst = out;
            else if (cur != a) dst = a == null ? (a = new float[n]) : a;
            else dst = b == null ? (b = new float[n]) : b;
            engines.get(i).forward(cur, tokens, dst);
            if (residual) for (int k = 0; k < n; k++) dst[k] += cur[k];
            cur = dst;
        }
    }
}
