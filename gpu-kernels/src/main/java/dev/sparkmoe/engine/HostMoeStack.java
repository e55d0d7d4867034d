package dev.sparkmoe.engine;

import java.util.List;

/**
 * A {@link MoeStack} of any engines (CPU, GPU, mixed), layer by layer through host memory: each layer's
 * {@link MoeEngine#forward}, then the residual {@code out[k] += x[k]} on the host. The reference for
 * {@link dev.sparkmoe.gpu.GpuMoeStack}. Thread-safe (buffers are per call).
 */
public final class HostMoeStack implements MoeStack {
    private final List<MoeEngine> layers;
    private final boolean residual;
    private final int hidden;

    public HostMoeStack(List<? extends MoeEngine> layers, boolean residual) {
        this.hidden = MoeStack.checkLayers(layers);
        this.layers = List.copyOf(layers);
        this.residual = residual;
    }

    @Override public List<MoeEngine> layers() { return layers; }
    @Override public boolean residual() { return residual; }
    @Override public int hiddenSize() { return hidden; }

    @Override
    public String description() {
        return layers.get(0).deviceDescription() + " (" + layers.size() + " layer(s) through host memory)";
    }

    @Override
    public void forward(float[] x, int tokens, float[] out) {
        // the layers' own forward() checks their inputs (the first one: x, with the finite scan) and out's size
        if (x != null && x == out) throw new MoeEngineException("layer stack input and output must be different arrays");
        if (tokens < 0) throw new MoeEngineException("token count must be >= 0, got " + tokens);
        int n = Math.multiplyExact(tokens, hidden);
        float[] a = null, b = null;
        float[] cur = x;
        for (int i = 0; i < layers.size(); i++) {
            float[] dst;
            if (i == layers.size() - 1) dst = out;
            else if (cur != a) dst = a == null ? (a = new float[n]) : a;
            else dst = b == null ? (b = new float[n]) : b;
            layers.get(i).forward(cur, tokens, dst);
            if (residual) for (int k = 0; k < n; k++) dst[k] += cur[k];
            cur = dst;
        }
    }
}
