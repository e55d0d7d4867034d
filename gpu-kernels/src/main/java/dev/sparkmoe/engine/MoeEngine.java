package dev.sparkmoe.engine;

import dev.sparkmoe.model.MoeConfig;

/**
 * One MoE layer, ready to run: {@code [T, hidden] -> [T, hidden]} (router, routed SwiGLU experts, shared experts;
 * no residual). Implementations hold their weights resident (CPU memory or GPU) until closed. {@link #forward} may be
 * called from several threads at once.
 */
public interface MoeEngine extends AutoCloseable {
    MoeConfig config();

    /** The decoder layer index in the checkpoint. */
    int layer();

    Precision precision();

    /** Human-readable description of where it runs, e.g. "cpu (2 threads, OpenBLAS)" or "gpu 0: NVIDIA H200". */
    String deviceDescription();

    /**
     * Computes the layer for {@code tokens} rows of {@code hidden} (row-major fp32 [tokens, H]) into {@code out}
     * (same shape). Inputs must be finite: a NaN or infinity is rejected with an error naming its token row.
     */
    void forward(float[] hidden, int tokens, float[] out);

    default float[] forward(float[] hidden, int tokens) {
        float[] out = new float[Math.multiplyExact(tokens, config().hiddenSize())];
        forward(hidden, tokens, out);
        return out;
    }

    @Override
    void close();

    /** The shared argument checks of every engine: shapes, and the finite-input policy. */
    static void checkInput(MoeConfig c, float[] hidden, int tokens, float[] out) {
        int h = c.hiddenSize();
        if (tokens < 0) throw new MoeEngineException("token count must be >= 0, got " + tokens);
        long need = (long) tokens * h;
        if (hidden == null || hidden.length < need) {
            throw new MoeEngineException("input holds " + (hidden == null ? 0 : hidden.length) + " values; " + tokens
                    + " tokens of hidden size " + h + " need " + need);
        }
        if (out == null || out.length < need) {
            throw new MoeEngineException("output holds " + (out == null ? 0 : out.length) + " values; need " + need);
        }
        for (int t = 0; t < tokens; t++) {
            for (int i = t * h, end = i + h; i < end; i++) {
                float v = hidden[i];
                if (Float.isNaN(v) || Float.isInfinite(v)) {
                    throw new MoeEngineException("input token " + t + " channel " + (i - t * h) + " is " + v
                            + ": inputs must be finite (NaN/Inf are rejected, not propagated)");
                }
            }
        }
    }
}
