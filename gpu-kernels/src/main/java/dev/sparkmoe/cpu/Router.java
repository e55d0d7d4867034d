package dev.sparkmoe.cpu;

import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.engine.MoeEngineException;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Expert routing exactly as the published models compute it, from fp32 router logits.
 *
 * <ul>
 *   <li>Mixtral: softmax over all experts, top-k, the k weights renormalized to sum 1.</li>
 *   <li>Qwen2/Qwen3-MoE: softmax, top-k, renormalized only when {@code norm_topk_prob}.</li>
 *   <li>DeepSeek-V3 ({@code noaux_tc}): sigmoid scores; selection ranks {@code score + e_score_correction_bias};
 *       the experts form {@code n_group} groups, each scored by the sum of its two best biased scores; the
 *       {@code topk_group} best groups are kept and the top-k experts are chosen among them only (as DeepSeek's
 *       reference inference code does: experts of dropped groups can never be chosen); weights are the unbiased
 *       sigmoid scores of the chosen experts, divided by their sum (+1e-20) when {@code norm_topk_prob}, then
 *       multiplied by {@code routed_scaling_factor}.</li>
 * </ul>
 *
 * <p>Ties: whenever two candidates (experts or groups) have equal keys, the lower index wins. Softmax families rank
 * experts by their logits (softmax is strictly increasing, so this is the same choice, free of rounding ties);
 * DeepSeek-V3 ranks by the fp32 value {@code sigmoid(logit) + bias} with sigmoid computed as
 * {@code 1 / (1 + exp(-x))} in fp32. The GPU route kernel uses the same keys and tie rule.
 */
public final class Router {
    private Router() {}

    /** Router logits in fp32 for {@code tokens} rows of {@code x} [T, H] against {@code w} [E, H] (row-major). */
    public static float[] logits(float[] x, int tokens, int hidden, float[] w, int experts) {
        float[] out = new float[Math.multiplyExact(tokens, experts)];
        logits(x, 0, tokens, hidden, w, experts, out);
        return out;
    }

    /** Tokens per float64 GEMM of {@link #logits}; blocks start at the range's first token. */
    public static final int LOGIT_BLOCK = 64;

    /**
     * Router logits of tokens {@code [from, to)} into {@code out[t*E + e]}: float64 products and sums (OpenBLAS dgemm
     * over blocks of {@link #LOGIT_BLOCK} tokens), rounded once to fp32. The result of a token depends only on its
     * block, so callers that split the tokens at multiples of {@code LOGIT_BLOCK} from the same start (the reference,
     * the fast path with any thread count) get bit-identical logits and hence the same expert choices.
     */
    public static void logits(float[] x, int from, int to, int hidden, float[] w, int experts, float[] out) {
        if (from >= to) return;
        int rows = Math.min(LOGIT_BLOCK, to - from);
        // malloc'd, not JavaCPP-tracked: its physical-memory check counts the engine's resident weights and mapped
        // checkpoint pages too, and could refuse a small buffer in a large process.
        DoublePointer wd = nativeDoubles((long) experts * hidden), xd = null, yd = null;
        try {
            xd = nativeDoubles((long) rows * hidden);
            yd = nativeDoubles((long) rows * experts);
            double[] wide = widen(w, 0, experts * hidden);
            wd.put(wide, 0, wide.length);
            double[] y = new double[rows * experts];
            for (int t0 = from; t0 < to; t0 += LOGIT_BLOCK) {
                int m = Math.min(LOGIT_BLOCK, to - t0);
                double[] xs = widen(x, t0 * hidden, m * hidden);
                xd.put(xs, 0, xs.length);
                Blas.matmulTransposedB(xd, wd, yd, m, experts, hidden);
                yd.get(y, 0, m * experts);
                for (int i = 0; i < m * experts; i++) out[t0 * experts + i] = (float) y[i];
            }
        } finally {
            for (DoublePointer p : new DoublePointer[] {wd, xd, yd}) if (p != null) Pointer.free(p);
        }
    }

    private static DoublePointer nativeDoubles(long n) {
        Pointer p = Pointer.malloc(n * 8);
        if (p == null || p.isNull()) throw new MoeEngineException("cannot allocate " + (n * 8) + " bytes of native memory for router logits");
        return new DoublePointer(p);
    }

    private static double[] widen(float[] v, int off, int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) d[i] = v[off + i];
        return d;
    }

    /** Routes every token from its logits [T, E]; {@code bias} is DeepSeek-V3's selection bias (else null). */
    public static RoutingResult route(MoeConfig c, float[] logits, float[] bias, int tokens) {
        int e = c.numExperts(), k = c.topK();
        if (logits.length < tokens * e) throw new IllegalArgumentException("logits hold " + logits.length + " values, need " + tokens + "x" + e);
        int[] experts = new int[tokens * k];
        float[] weights = new float[tokens * k];
        float[] row = new float[e];
        for (int t = 0; t < tokens; t++) {
            System.arraycopy(logits, t * e, row, 0, e);
            switch (c.scoring()) {
                case SOFTMAX -> routeSoftmax(c, row, experts, weights, t * k);
                case SIGMOID -> routeSigmoid(c, row, bias, experts, weights, t * k);
            }
        }
        return new RoutingResult(tokens, k, experts, weights);
    }

    private static void routeSoftmax(MoeConfig c, float[] logits, int[] experts, float[] weights, int at) {
        int k = c.topK();
        topK(logits, null, k, experts, at);
        float max = Float.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double all = 0;
        for (float l : logits) all += Math.exp((double) l - max);
        double chosen = 0;
        for (int j = 0; j < k; j++) chosen += Math.exp((double) logits[experts[at + j]] - max);
        double denom = c.normTopkProb() ? chosen : all;
        for (int j = 0; j < k; j++) weights[at + j] = (float) (Math.exp((double) logits[experts[at + j]] - max) / denom);
    }

    private static void routeSigmoid(MoeConfig c, float[] logits, float[] bias, int[] experts, float[] weights, int at) {
        int e = c.numExperts(), k = c.topK();
        float[] score = new float[e];
        float[] key = new float[e];
        for (int i = 0; i < e; i++) {
            score[i] = sigmoid(logits[i]);
            key[i] = bias == null ? score[i] : score[i] + bias[i];
        }
        boolean[] eligible = null;
        if (c.nGroup() > 1) {
            int g = c.nGroup(), size = c.groupSize();
            float[] groupScore = new float[g];
            for (int gi = 0; gi < g; gi++) {
                float best = Float.NEGATIVE_INFINITY, second = Float.NEGATIVE_INFINITY;
                for (int i = gi * size; i < (gi + 1) * size; i++) {
                    if (key[i] > best) { second = best; best = key[i]; } else if (key[i] > second) second = key[i];
                }
                groupScore[gi] = best + second;
            }
            int[] keptGroups = new int[c.topkGroup()];
            topK(groupScore, null, c.topkGroup(), keptGroups, 0);
            eligible = new boolean[e];
            for (int gi : keptGroups) for (int i = gi * size; i < (gi + 1) * size; i++) eligible[i] = true;
        }
        topK(key, eligible, k, experts, at);
        double sum = 0;
        for (int j = 0; j < k; j++) sum += score[experts[at + j]];
        for (int j = 0; j < k; j++) {
            double w = score[experts[at + j]];
            if (c.normTopkProb()) w = w / (sum + 1e-20);
            weights[at + j] = (float) (w * c.routedScalingFactor());
        }
    }

    /** fp32 logistic function, the formula the GPU uses too. */
    public static float sigmoid(float x) { return 1f / (1f + (float) Math.exp(-x)); }

    /**
     * Writes the indices of the {@code k} largest {@code key}s (among {@code eligible} ones, if given) into
     * {@code out[at..at+k)}, best first; equal keys go to the lower index. NaN keys rank lowest.
     */
    static void topK(float[] key, boolean[] eligible, int k, int[] out, int at) {
        boolean[] taken = new boolean[key.length];
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int i = 0; i < key.length; i++) {
                if (taken[i] || (eligible != null && !eligible[i])) continue;
                if (best < 0 || greater(key[i], key[best])) best = i;
            }
            if (best < 0) throw new IllegalStateException("fewer than " + k + " eligible candidates");
            taken[best] = true;
            out[at + j] = best;
        }
    }

    /** a ranks strictly above b (a strictly larger; NaN below everything). Scanning ascending gives ties to the lower index. */
    private static boolean greater(float a, float b) {
        if (Float.isNaN(a)) return false;
        if (Float.isNaN(b)) return true;
        return a > b;
    }
}
