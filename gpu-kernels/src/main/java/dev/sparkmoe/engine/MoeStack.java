package dev.sparkmoe.engine;

import dev.sparkmoe.gpu.GpuMoeStack;

import java.util.List;

/**
 * MoE layers applied in sequence to the same tokens, each as {@code x <- moe(x)} or, with the residual,
 * {@code x <- x + moe(x)} (fp32, one addition per element). A stack holds no resources of its own: the engines
 * belong to the caller and must stay open while it is used. {@link #forward} is thread-safe.
 */
public interface MoeStack {
    /** The layers, in the order they are applied. */
    List<MoeEngine> layers();

    boolean residual();

    default int hiddenSize() { return layers().get(0).config().hiddenSize(); }

    /** Where and how it runs, e.g. "gpu 0: ... (4 layers device-resident)". */
    String description();

    /**
     * {@code out[0, tokens*H)} = the stack applied to {@code x[0, tokens*H)}; {@code x} (a different array) is left
     * unchanged. Inputs are checked as {@link MoeEngine#checkInput} does.
     */
    void forward(float[] x, int tokens, float[] out);

    default float[] forward(float[] x, int tokens) {
        float[] out = new float[Math.multiplyExact(tokens, hiddenSize())];
        forward(x, tokens, out);
        return out;
    }

    /**
     * The fastest stack for these engines: device-resident ({@link GpuMoeStack}: one upload and one download per call)
     * when they are all GPU engines of one device, else layer by layer through host memory ({@link HostMoeStack}).
     * Both give bitwise the same results.
     */
    static MoeStack of(List<? extends MoeEngine> layers, boolean residual) {
        return GpuMoeStack.unsupportedReason(layers).isEmpty() ? GpuMoeStack.of(layers, residual) : new HostMoeStack(layers, residual);
    }

    /** Checks shared by the implementations: at least one layer, one hidden size. */
    static int checkLayers(List<? extends MoeEngine> layers) {
        if (layers == null || layers.isEmpty()) throw new MoeEngineException("a layer stack needs at least one layer");
        int h = layers.get(0).config().hiddenSize();
        for (MoeEngine e : layers) {
            if (e.config().hiddenSize() != h) {
                throw new MoeEngineException("layer " + e.layer() + " of the stack has hidden size " + e.config().hiddenSize() + ", not " + h);
            }
        }
        return h;
    }

    /** The stack's own argument checks (then {@link MoeEngine#checkInput} of the first layer). */
    static void checkCall(MoeStack s, float[] x, int tokens, float[] out) {
        if (x != null && x == out) throw new MoeEngineException("layer stack input and output must be different arrays");
        MoeEngine.checkInput(s.layers().get(0).config(), x, tokens, out);
    }
}
