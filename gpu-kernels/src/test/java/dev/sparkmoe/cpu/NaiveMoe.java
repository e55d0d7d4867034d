package dev.sparkmoe.cpu;

import dev.sparkmoe.checkpoint.Floats;
import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.checkpoint.MoeLayerWeights.ExpertWeights;
import dev.sparkmoe.checkpoint.WeightMatrix;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.model.ScoringFunction;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * A deliberately naive float64 MoE layer, independent of the engine's code paths: weights read element by element
 * from the tensors, routing by sorting, everything in double. The FP8 recipe's quantization steps are spelled out
 * here from the recipe's text (fp32 amax, scale and multiplier, then {@link Floats#roundToE4m3}, which has its own
 * hand-worked tests); only they round to fp32, as the recipe says.
 */
final class NaiveMoe {
    private final MoeConfig c;
    private final Precision p;
    private final MoeLayerWeights w;
    private final double[][][] experts; // [expert][gate, up, down] flattened
    private final double[][] shared;
    private final double[] router;

    NaiveMoe(MoeLayerWeights w, Precision p) {
        this.c = w.config();
        this.p = p;
        this.w = w;
        this.router = values(w.router(), Precision.NATIVE);
        experts = new double[c.numExperts()][][];
        for (int e = 0; e < experts.length; e++) experts[e] = expert(w.experts().get(e));
        shared = w.shared() == null ? null : expert(w.shared());
    }

    private double[][] expert(ExpertWeights x) {
        return new double[][] {values(x.gate(), p), values(x.up(), p), values(x.down(), p)};
    }

    /** The weight's values: stored (times block scale for FP8 checkpoints), or quantized per 128x128 in FP8. */
    private static double[] values(WeightMatrix m, Precision p) {
        int rows = m.rows(), cols = m.cols();
        double[] v = new double[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int col = 0; col < cols; col++) {
                double x = m.weight().get((long) r * cols + col);
                if (m.isBlockScaled()) {
                    int sCols = (cols + m.blockCols() - 1) / m.blockCols();
                    x *= m.scaleInv().get((long) (r / m.blockRows()) * sCols + col / m.blockCols());
                }
                v[r * cols + col] = x;
            }
        }
        if (p == Precision.FP8 && !m.isBlockScaled()) {
            for (int r0 = 0; r0 < rows; r0 += 128) {
                for (int c0 = 0; c0 < cols; c0 += 128) {
                    float amax = 0;
                    for (int r = r0; r < Math.min(rows, r0 + 128); r++)
                        for (int col = c0; col < Math.min(cols, c0 + 128); col++) amax = (float) Math.max(amax, Math.abs(v[r * cols + col]));
                    for (int r = r0; r < Math.min(rows, r0 + 128); r++)
                        for (int col = c0; col < Math.min(cols, c0 + 128); col++) v[r * cols + col] = quantize((float) v[r * cols + col], amax);
                }
            }
        }
        return v;
    }

    /** The recipe for one value of a block with the given amax: e4m3(x * (448/amax)) * (amax/448), fp32 steps. */
    private static double quantize(float x, float amax) {
        if (amax < 0x1p-64f) return 0; // an all-zero block (the recipe's ZERO_BLOCK_AMAX)
        float mult = 448f / amax, scale = amax / 448f;
        return (double) Floats.roundToE4m3(x * mult) * scale;
    }

    private static double[] quantizeRow(double[] row) {
        double[] q = new double[row.length];
        for (int b = 0; b < row.length; b += 128) {
            float amax = 0;
            int end = Math.min(row.length, b + 128);
            for (int i = b; i < end; i++) amax = Math.max(amax, Math.abs((float) row[i]));
            for (int i = b; i < end; i++) q[i] = quantize((float) row[i], amax);
        }
        return q;
    }

    /** The chosen experts and weights of one token, by sorting (ties: lower index, as the engine documents). */
    record Choice(int[] experts, double[] weights) {}

    Choice route(float[] logits) {
        int e = c.numExperts(), k = c.topK();
        int[] chosen = new int[k];
        double[] weights = new double[k];
        if (c.scoring() == ScoringFunction.SOFTMAX) {
            double max = Double.NEGATIVE_INFINITY;
            for (float l : logits) max = Math.max(max, l);
            double[] prob = new double[e];
            double sum = 0;
            for (int i = 0; i < e; i++) sum += prob[i] = Math.exp(logits[i] - max);
            for (int i = 0; i < e; i++) prob[i] /= sum;
            List<Integer> order = sortedDescending(prob, null);
            double chosenSum = 0;
            for (int j = 0; j < k; j++) { chosen[j] = order.get(j); chosenSum += prob[chosen[j]]; }
            for (int j = 0; j < k; j++) weights[j] = c.normTopkProb() ? prob[chosen[j]] / chosenSum : prob[chosen[j]];
        } else {
            double[] score = new double[e], key = new double[e];
            for (int i = 0; i < e; i++) {
                score[i] = 1 / (1 + Math.exp(-logits[i]));
                key[i] = score[i] + (w.selectionBias() == null ? 0 : w.selectionBias()[i]);
            }
            boolean[] eligible = new boolean[e];
            int size = c.groupSize();
            double[] groupScore = new double[c.nGroup()];
            for (int g = 0; g < c.nGroup(); g++) {
                double[] members = new double[size];
                for (int i = 0; i < size; i++) members[i] = key[g * size + i];
                List<Integer> o = sortedDescending(members, null);
                groupScore[g] = members[o.get(0)] + members[o.get(1)];
            }
            List<Integer> groups = sortedDescending(groupScore, null);
            for (int g = 0; g < c.topkGroup(); g++) for (int i = 0; i < size; i++) eligible[groups.get(g) * size + i] = true;
            List<Integer> order = sortedDescending(key, eligible);
            double sum = 0;
            for (int j = 0; j < k; j++) { chosen[j] = order.get(j); sum += score[chosen[j]]; }
            for (int j = 0; j < k; j++) {
                double v = c.normTopkProb() ? score[chosen[j]] / sum : score[chosen[j]];
                weights[j] = v * c.routedScalingFactor();
            }
        }
        return new Choice(chosen, weights);
    }

    private static List<Integer> sortedDescending(double[] v, boolean[] eligible) {
        List<Integer> idx = new ArrayList<>();
        for (int i = 0; i < v.length; i++) if (eligible == null || eligible[i]) idx.add(i);
        idx.sort(Comparator.comparingDouble((Integer i) -> -v[i]).thenComparingInt(i -> i));
        return idx;
    }

    double[] forward(float[] hidden, int tokens) {
        int h = c.hiddenSize();
        double[] out = new double[tokens * h];
        for (int t = 0; t < tokens; t++) {
            double[] x = new double[h];
            for (int i = 0; i < h; i++) x[i] = hidden[t * h + i];
            float[] logits = new float[c.numExperts()];
            for (int e = 0; e < logits.length; e++) logits[e] = (float) dot(router, e * h, x, h);
            Choice choice = route(logits);
            double sharedWeight = 1;
            if (w.sharedGate() != null) sharedWeight = 1 / (1 + Math.exp(-dot(values(w.sharedGate(), Precision.NATIVE), 0, x, h)));
            double[] in = p == Precision.FP8 ? quantizeRow(x) : x;
            for (int j = 0; j < c.topK(); j++) {
                double[] y = expert(experts[choice.experts()[j]], in);
                for (int i = 0; i < h; i++) out[t * h + i] += choice.weights()[j] * y[i];
            }
            if (shared != null) {
                double[] y = expert(shared, in);
                for (int i = 0; i < h; i++) out[t * h + i] += sharedWeight * y[i];
            }
        }
        return out;
    }

    private double[] expert(double[][] m, double[] x) {
        int h = x.length, inter = m[0].length / h;
        double[] act = new double[inter];
        for (int i = 0; i < inter; i++) {
            double g = dot(m[0], i * h, x, h), u = dot(m[1], i * h, x, h);
            act[i] = g / (1 + Math.exp(-g)) * u;
        }
        if (p == Precision.FP8) act = quantizeRow(act);
        double[] y = new double[h];
        for (int i = 0; i < h; i++) y[i] = dot(m[2], i * inter, act, inter);
        return y;
    }

    private static double dot(double[] m, int off, double[] x, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) s += m[off + i] * x[i];
        return s;
    }
}
