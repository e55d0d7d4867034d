package dev.sparkmoe.cpu;

import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.checkpoint.MoeLayerWeights.ExpertWeights;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.model.MoeConfig;

/**
 * The MoE layer forward written to be obviously right: one thread, plain loops, one token at a time, in the order
 * of the model's definition. {@link CpuMoeEngine} must agree with it to fp32 rounding; it exists for that check and
 * for reading, not for speed.
 *
 * <pre>
 *   logits  = x · routerᵀ                      float64 sums rounded to fp32, from the fp32 input (both precisions)
 *   experts, weights = Router.route(logits)
 *   out     = Σ_j weight_j · expert_j(x)       in selection order
 *           + gate · shared(x)                 gate = 1, or sigmoid(shared_expert_gate · x) for Qwen2-MoE
 *   expert(x) = down · (silu(gate · x) * (up · x))
 * </pre>
 *
 * In {@link Precision#FP8} the expert input x and the SwiGLU output are quantized per token per 128 channels
 * ({@link Fp8Quantizer}), the weights are those of {@link WeightValues}; every dot product accumulates in float64.
 */
public final class MoeLayerReference implements MoeEngine {
    private final MoeConfig config;
    private final int layer;
    private final Precision precision;
    private final float[] router;          // [E, H], as stored
    private final float[] selectionBias;   // DeepSeek-V3's e_score_correction_bias, else null
    private final Expert[] experts;
    private final Expert shared;           // null when the family has none
    private final float[] sharedGate;      // Qwen2-MoE's shared_expert_gate [H], else null
    private boolean closed;

    /** One SwiGLU expert's weights as {@code precision} multiplies with them. */
    private record Expert(float[] gate, float[] up, float[] down, int intermediate) {}

    public MoeLayerReference(MoeLayerWeights w, Precision precision) {
        this.config = w.config();
        this.layer = w.layer();
        this.precision = precision;
        this.router = w.router().toFloats();
        this.selectionBias = w.selectionBias();
        this.experts = new Expert[w.experts().size()];
        for (int e = 0; e < experts.length; e++) experts[e] = expert(w.experts().get(e));
        this.shared = w.shared() == null ? null : expert(w.shared());
        this.sharedGate = w.sharedGate() == null ? null : w.sharedGate().toFloats();
    }

    private Expert expert(ExpertWeights x) {
        return new Expert(WeightValues.of(x.gate(), precision), WeightValues.of(x.up(), precision),
                WeightValues.of(x.down(), precision), x.intermediate());
    }

    @Override
    public void forward(float[] hidden, int tokens, float[] out) {
        if (closed) throw new MoeEngineException("reference engine for layer " + layer + " is closed");
        MoeEngine.checkInput(config, hidden, tokens, out);
        int h = config.hiddenSize(), k = config.topK();

        float[] logits = Router.logits(hidden, tokens, h, router, config.numExperts());
        RoutingResult routing = Router.route(config, logits, selectionBias, tokens);

        float[] sharedGateLogits = sharedGate == null ? null : Router.logits(hidden, tokens, h, sharedGate, 1);

        float[] x = new float[h];
        for (int t = 0; t < tokens; t++) {
            System.arraycopy(hidden, t * h, x, 0, h);
            float sharedWeight = sharedGate == null ? 1f : Router.sigmoid(sharedGateLogits[t]);
            if (precision == Precision.FP8) Fp8Quantizer.roundTripActivations(x, 0, 1, h);

            float[] acc = new float[h];
            for (int j = 0; j < k; j++) {
                float[] y = apply(experts[routing.expert(t, j)], x);
                float weight = routing.weight(t, j);
                for (int c = 0; c < h; c++) acc[c] += weight * y[c];
            }
            if (shared != null) {
                float[] y = apply(shared, x);
                for (int c = 0; c < h; c++) acc[c] += sharedWeight * y[c];
            }
            System.arraycopy(acc, 0, out, t * h, h);
        }
    }

    /** down · (silu(gate · x) * (up · x)), the SwiGLU output quantized first in FP8. */
    private float[] apply(Expert e, float[] x) {
        int h = x.length, inter = e.intermediate();
        float[] act = new float[inter];
        for (int i = 0; i < inter; i++) {
            act[i] = Swiglu.apply(dot(e.gate(), i * h, x, h), dot(e.up(), i * h, x, h));
        }
        if (precision == Precision.FP8) Fp8Quantizer.roundTripActivations(act, 0, 1, inter);
        float[] y = new float[h];
        for (int c = 0; c < h; c++) y[c] = dot(e.down(), c * inter, act, inter);
        return y;
    }

    /** Row {@code row..row+n} of a matrix times a vector, accumulated in float64, rounded once to fp32. */
    private static float dot(float[] matrix, int row, float[] v, int n) {
        double acc = 0;
        for (int i = 0; i < n; i++) acc += (double) matrix[row + i] * v[i];
        return (float) acc;
    }

    @Override public MoeConfig config() { return config; }
    @Override public int layer() { return layer; }
    @Override public Precision precision() { return precision; }
    @Override public String deviceDescription() { return "cpu reference (1 thread, plain loops)"; }

    @Override
    public void close() {
        if (closed) throw new MoeEngineException("reference engine for layer " + layer + " closed twice");
        closed = true;
    }
}
