package dev.sparkmoe.cpu;

import dev.sparkmoe.model.ModelFamily;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.model.ScoringFunction;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Routing of each family against cases worked by hand (expected weights derived on paper, not taken from the code). */
class RouterTest {
    private static final double EPS = 1e-6;

    private static MoeConfig softmax(ModelFamily f, int experts, int k, boolean norm) {
        return new MoeConfig(f, 4, 4, experts, k, 0, false, ScoringFunction.SOFTMAX, 1, 1, norm, 1f, false, 1, Set.of(0), null);
    }

    private static MoeConfig deepseek(int experts, int k, int groups, int keep, boolean norm, float scaling) {
        return new MoeConfig(ModelFamily.DEEPSEEK_V3, 4, 4, experts, k, 4, false, ScoringFunction.SIGMOID, groups, keep, norm,
                scaling, true, 1, Set.of(0), null);
    }

    private static void assertRoute(RoutingResult r, int token, int[] experts, double[] weights) {
        int k = r.topK();
        int[] got = new int[k];
        for (int j = 0; j < k; j++) got[j] = r.expert(token, j);
        assertArrayEquals(experts, got, "experts of token " + token);
        for (int j = 0; j < k; j++) assertEquals(weights[j], r.weight(token, j), EPS, "weight " + j + " of token " + token);
    }

    private static double sigmoid(double x) { return 1 / (1 + Math.exp(-x)); }

    @Test
    void mixtralRenormalizedTop2() {
        // logits [1, 3, 2, 0]: top-2 = experts 1, 2; weights e^3/(e^3+e^2) = sigmoid(1), e^2/(e^3+e^2) = sigmoid(-1)
        RoutingResult r = Router.route(softmax(ModelFamily.MIXTRAL, 4, 2, true), new float[] {1, 3, 2, 0}, null, 1);
        assertRoute(r, 0, new int[] {1, 2}, new double[] {0.7310585786300049, 0.2689414213699951});
    }

    @Test
    void qwen3WithAndWithoutNormTopkProb() {
        // logits ln 1, ln 2, ln 3, ln 4: softmax = [0.1, 0.2, 0.3, 0.4]; top-2 = experts 3, 2
        float[] logits = {0f, (float) Math.log(2), (float) Math.log(3), (float) Math.log(4)};
        assertRoute(Router.route(softmax(ModelFamily.QWEN3_MOE, 4, 2, false), logits, null, 1), 0,
                new int[] {3, 2}, new double[] {0.4, 0.3});
        assertRoute(Router.route(softmax(ModelFamily.QWEN3_MOE, 4, 2, true), logits, null, 1), 0,
                new int[] {3, 2}, new double[] {4.0 / 7, 3.0 / 7});
        // Qwen2-MoE (Qwen1.5-MoE-A2.7B ships norm_topk_prob false): top-3 keeps the raw softmax weights
        assertRoute(Router.route(softmax(ModelFamily.QWEN2_MOE, 4, 3, false), logits, null, 1), 0,
                new int[] {3, 2, 1}, new double[] {0.4, 0.3, 0.2});
    }

    @Test
    void tiesGoToTheLowerIndex() {
        MoeConfig top3 = softmax(ModelFamily.QWEN3_MOE, 4, 3, false);
        // logits [2, 1, 2, 2]: three-way tie at 2 -> 0, 2, 3 in that order, each e^2 / (3e^2 + e) of the softmax
        double w = Math.exp(2) / (3 * Math.exp(2) + Math.exp(1));
        assertRoute(Router.route(top3, new float[] {2, 1, 2, 2}, null, 1), 0, new int[] {0, 2, 3}, new double[] {w, w, w});
        // all equal: the first k experts, 1/4 each
        assertRoute(Router.route(top3, new float[] {5, 5, 5, 5}, null, 1), 0, new int[] {0, 1, 2}, new double[] {0.25, 0.25, 0.25});
        // two tokens at once keep their own rows
        RoutingResult two = Router.route(softmax(ModelFamily.MIXTRAL, 4, 2, true), new float[] {0, 0, 1, 1, 7, 0, 0, 7}, null, 2);
        assertRoute(two, 0, new int[] {2, 3}, new double[] {0.5, 0.5});
        assertRoute(two, 1, new int[] {0, 3}, new double[] {0.5, 0.5});
    }

    @Test
    void deepseekBiasChangesTheChoiceButNotTheWeights() {
        // scores sigmoid([2, 1, 0, -1]); bias 0.5 on expert 2 lifts its key 0.5 + 0.5 = 1.0 above sigmoid(2) = 0.881:
        // chosen 2 then 0; weights use the unbiased scores: s2 = 0.5, s0 = sigmoid(2), normalized, times 2.5
        MoeConfig c = deepseek(4, 2, 1, 1, true, 2.5f);
        float[] logits = {2, 1, 0, -1};
        double s0 = sigmoid(2), s2 = 0.5;
        assertRoute(Router.route(c, logits, new float[] {0, 0, 0.5f, 0}, 1), 0,
                new int[] {2, 0}, new double[] {2.5 * s2 / (s0 + s2), 2.5 * s0 / (s0 + s2)});
        // without the bias: experts 0 and 1
        double s1 = sigmoid(1);
        assertRoute(Router.route(c, logits, new float[4], 1), 0, new int[] {0, 1}, new double[] {2.5 * s0 / (s0 + s1), 2.5 * s1 / (s0 + s1)});
        // norm_topk_prob false: the raw scores times routed_scaling_factor
        assertRoute(Router.route(deepseek(4, 2, 1, 1, false, 2.5f), logits, new float[] {0, 0, 0.5f, 0}, 1), 0,
                new int[] {2, 0}, new double[] {2.5 * s2, 2.5 * s0});
    }

    @Test
    void deepseekGroupSelection() {
        // logits 0 -> every score 0.5; the biases (exact binary fractions) make the keys
        //   [0.875, 0.125 | 0.75, 0.75 | 0.8125, 0 | 0.5, 0.5]
        // group scores (sum of the top 2): g0 = 1.0, g1 = 1.5, g2 = 0.8125, g3 = 1.0; keep 2 -> g1, then g0 (ties g3, lower index)
        // eligible experts 0..3: top-2 = 0 (0.875), then 2 (ties 3 at 0.75, lower index). Expert 4 (0.8125), second best
        // overall, is in a dropped group. Weights: 0.5 / (0.5 + 0.5) * 2.5 = 1.25 each.
        MoeConfig c = deepseek(8, 2, 4, 2, true, 2.5f);
        float[] bias = {0.375f, -0.375f, 0.25f, 0.25f, 0.3125f, -0.5f, 0f, 0f};
        assertRoute(Router.route(c, new float[8], bias, 1), 0, new int[] {0, 2}, new double[] {1.25, 1.25});
        // with all 4 groups kept, expert 4 is chosen
        assertRoute(Router.route(deepseek(8, 2, 4, 4, true, 2.5f), new float[8], bias, 1), 0, new int[] {0, 4}, new double[] {1.25, 1.25});
    }

    @Test
    void logitsAreTheFloat64DotProductRoundedOnce() {
        // x = [1, 2^-30, -1, 3], w0 = [1, 1, 1, 0]: fp32 summation left to right would lose 2^-30 (1 + 2^-30 rounds to 1);
        // float64 keeps it, and the result 2^-30 is exact in fp32. w1 = [0.5, 0, 0.25, 2] -> 0.5 - 0.25 + 6 = 6.25.
        float[] x = {1f, 0x1p-30f, -1f, 3f};
        float[] w = {1f, 1f, 1f, 0f, 0.5f, 0f, 0.25f, 2f};
        assertArrayEquals(new float[] {0x1p-30f, 6.25f}, Router.logits(x, 1, 4, w, 2));
    }

    @Test
    void logitsOfBlockAlignedRangesEqualTheWholeBatchBitwise() {
        int tokens = 3 * Router.LOGIT_BLOCK + 11, h = 96, e = 12;
        long seed = dev.sparkmoe.testing.TensorChecks.freshSeed();
        float[] x = dev.sparkmoe.testing.TensorChecks.randomNormal(seed, tokens * h, 1.0);
        float[] w = dev.sparkmoe.testing.TensorChecks.randomNormal(seed + 1, e * h, 0.1);
        float[] whole = Router.logits(x, tokens, h, w, e);
        float[] split = new float[tokens * e];
        Router.logits(x, 2 * Router.LOGIT_BLOCK, tokens, h, w, e, split); // ranges in any order, as threads run them
        Router.logits(x, 0, Router.LOGIT_BLOCK, h, w, e, split);
        Router.logits(x, Router.LOGIT_BLOCK, 2 * Router.LOGIT_BLOCK, h, w, e, split);
        assertArrayEquals(whole, split, "seed " + seed);
        // and each is the float64 dot product rounded once (float64 summation order may move the last double bit only)
        for (int t = 0; t < tokens; t += 37) {
            for (int j = 0; j < e; j++) {
                double acc = 0;
                for (int i = 0; i < h; i++) acc += (double) x[t * h + i] * w[j * h + i];
                assertEquals((float) acc, whole[t * e + j], Math.ulp((float) acc), "seed " + seed + " token " + t + " expert " + j);
            }
        }
    }
}
