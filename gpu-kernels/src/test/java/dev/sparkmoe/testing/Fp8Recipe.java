package dev.sparkmoe.testing;

import dev.sparkmoe.checkpoint.Floats;
import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.checkpoint.MoeLayerWeights.ExpertWeights;
import dev.sparkmoe.cpu.Fp8Quantizer;
import dev.sparkmoe.cpu.Router;
import dev.sparkmoe.cpu.RoutingResult;
import dev.sparkmoe.cpu.Swiglu;
import dev.sparkmoe.cpu.WeightValues;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.model.MoeConfig;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The FP8 recipe of the CPU reference ({@code MoeLayerReference} in {@link Precision#FP8}), computed once more with the
 * roundings it cannot decide made visible: a re-quantized SwiGLU element whose scaled value lies within a relative
 * {@link #MARGIN} of an e4m3 rounding midpoint takes one code in float64 and may take its neighbour in any engine that
 * sums in fp32 (and exponentiates with another {@code exp}) - the GPU's exactly accumulating paths, and the CPU engine
 * itself (OpenBLAS sgemm), which the GPU tests compare with. One such flip moves a small layer's output by ~1e-3 (one
 * e4m3 step of one element), the size of the FP8 bound itself, which made the exact-accumulation checks fail a few
 * runs in a hundred on the tiny and mid-size shapes although every other element matched to fp32 rounding. The error
 * {@link #assertWithin} asserts is against this float64 recipe, not against the CPU engine's fp32 sums.
 *
 * <p>{@link #assertWithin} therefore checks an engine's output against the recipe with each such undecided code taken
 * whichever way brings the reference closer to the output (per token, greedily; each alternative is one element's
 * exact contribution, routing weight x code step x scale x its down-projection column). Only codes within the margin
 * are eligible - about one in 10^4 elements at 2^-18, 40x the fp32 error of the GPU's exactly-accumulating paths - so
 * the check stays the bound on everything else.
 */
public final class Fp8Recipe {
    /** Relative distance to an e4m3 rounding midpoint within which a code is undecided at fp32 precision. */
    public static final double MARGIN = 0x1p-18;

    private final MoeConfig config;
    private final float[] router;
    private final float[] selectionBias;
    private final float[] sharedGate;
    private final ExpertWeights[] expertWeights;
    private final Expert[] experts;   // dequantized on first use
    private final Expert shared;

    private record Expert(float[] gate, float[] up, float[] down, int intermediate) {}

    /** One undecided code of one token: {@code delta} is what taking the other code adds to the token's output row. */
    public record Alternative(int token, double[] delta) {}

    /** The recipe's output for one input and the undecided codes it met. */
    public record Result(double[] output, List<Alternative> alternatives) {}

    /** The check's outcome: the error against the resolved reference and how many alternatives were taken. */
    public record Resolution(double error, int undecided, int taken) {}

    private Fp8Recipe(MoeLayerWeights w) {
        this.config = w.config();
        this.router = w.router().toFloats();
        this.selectionBias = w.selectionBias();
        this.sharedGate = w.sharedGate() == null ? null : w.sharedGate().toFloats();
        this.expertWeights = w.experts().toArray(new ExpertWeights[0]);
        this.experts = new Expert[expertWeights.length];
        this.shared = w.shared() == null ? null : dequantize(w.shared());
    }

    /** The recipe for a layer's weights (experts dequantized as first used; not cached: checks need it only on failure). */
    public static Fp8Recipe of(MoeLayerWeights w) { return new Fp8Recipe(w); }

    private static Expert dequantize(ExpertWeights x) {
        return new Expert(WeightValues.of(x.gate(), Precision.FP8), WeightValues.of(x.up(), Precision.FP8),
                WeightValues.of(x.down(), Precision.FP8), x.intermediate());
    }

    private synchronized Expert expert(int e) {
        if (experts[e] == null) experts[e] = dequantize(expertWeights[e]);
        return experts[e];
    }

    /** The recipe on {@code hidden} [tokens, H]: routing as the CPU engine, experts in float64, codes noted. */
    public Result forward(float[] hidden, int tokens) {
        int h = config.hiddenSize(), k = config.topK();
        float[] logits = Router.logits(hidden, tokens, h, router, config.numExperts());
        RoutingResult routing = Router.route(config, logits, selectionBias, tokens);
        float[] sharedGateLogits = sharedGate == null ? null : Router.logits(hidden, tokens, h, sharedGate, 1);
        for (int t = 0; t < tokens; t++) for (int j = 0; j < k; j++) expert(routing.expert(t, j));

        double[] out = new double[tokens * h];
        List<List<Alternative>> perToken = new ArrayList<>();
        for (int t = 0; t < tokens; t++) perToken.add(new ArrayList<>());
        IntStream.range(0, tokens).parallel().forEach(t -> {
            float[] x = new float[h];
            System.arraycopy(hidden, t * h, x, 0, h);
            Fp8Quantizer.roundTripActivations(x, 0, 1, h);
            List<Alternative> alts = perToken.get(t);
            for (int j = 0; j < k; j++) apply(expert(routing.expert(t, j)), x, routing.weight(t, j), t, out, alts);
            if (shared != null) {
                float sharedWeight = sharedGate == null ? 1f : Router.sigmoid(sharedGateLogits[t]);
                apply(shared, x, sharedWeight, t, out, alts);
            }
        });
        List<Alternative> all = new ArrayList<>();
        perToken.forEach(all::addAll);
        return new Result(out, all);
    }

    /** out[t] += weight * down . q(silu(gate . x) * (up . x)), noting each code within the margin of a midpoint. */
    private void apply(Expert e, float[] x, float weight, int t, double[] out, List<Alternative> alts) {
        int h = x.length, inter = e.intermediate();
        float[] act = new float[inter];
        for (int i = 0; i < inter; i++) act[i] = Swiglu.apply(dot(e.gate(), i * h, x, h), dot(e.up(), i * h, x, h));
        double[] q = new double[inter];
        for (int b0 = 0; b0 < inter; b0 += Fp8Quantizer.BLOCK) {
            int b1 = Math.min(inter, b0 + Fp8Quantizer.BLOCK);
            float amax = 0;
            for (int i = b0; i < b1; i++) amax = Math.max(amax, Math.abs(act[i]));
            float scale = Fp8Quantizer.scaleOf(amax), mult = Fp8Quantizer.multiplierOf(amax);
            for (int i = b0; i < b1; i++) {
                float v = act[i] * mult;
                byte code = Floats.floatToE4m3(v);
                q[i] = (double) Floats.e4m3ToFloat(code) * scale;
                byte below = Floats.floatToE4m3((float) (v * (1 - MARGIN))), above = Floats.floatToE4m3((float) (v * (1 + MARGIN)));
                byte other = below != code ? below : above;
                if (other != code) {
                    double step = ((double) Floats.e4m3ToFloat(other) - Floats.e4m3ToFloat(code)) * scale * weight;
                    double[] delta = new double[h];
                    for (int c = 0; c < h; c++) delta[c] = step * e.down()[c * inter + i];
                    alts.add(new Alternative(t, delta));
                }
            }
        }
        for (int c = 0; c < h; c++) {
            double acc = 0;
            for (int i = 0; i < inter; i++) acc += e.down()[c * inter + i] * q[i];
            out[t * h + c] += weight * acc;
        }
    }

    private static float dot(float[] matrix, int row, float[] v, int n) {
        double acc = 0;
        for (int i = 0; i < n; i++) acc += (double) matrix[row + i] * v[i];
        return (float) acc;
    }

    /**
     * ||out - ref'|| / ||ref|| where ref' is the recipe's output with each undecided code taken the other way when that
     * brings the token's row closer to {@code out} (two greedy passes).
     */
    public static Resolution resolve(Result r, float[] out) {
        double[] res = new double[out.length];
        for (int i = 0; i < out.length; i++) res[i] = out[i] - r.output()[i];
        int h = r.alternatives().isEmpty() ? 0 : r.alternatives().get(0).delta().length;
        boolean[] taken = new boolean[r.alternatives().size()];
        for (int pass = 0; pass < 2; pass++) {
            for (int a = 0; a < taken.length; a++) {
                Alternative alt = r.alternatives().get(a);
                int base = alt.token() * h;
                double sign = taken[a] ? -1 : 1, gain = 0;  // ||res - s d||^2 - ||res||^2 = -2 s <res, d> + ||d||^2
                for (int c = 0; c < h; c++) gain += alt.delta()[c] * (alt.delta()[c] - 2 * sign * res[base + c]);
                if (gain < 0) {
                    for (int c = 0; c < h; c++) res[base + c] -= sign * alt.delta()[c];
                    taken[a] = !taken[a];
                }
            }
        }
        double[] resolved = new double[out.length];
        for (int i = 0; i < out.length; i++) resolved[i] = out[i] - res[i];
        int n = 0;
        for (boolean b : taken) n += b ? 1 : 0;
        return new Resolution(TensorChecks.relativeError(out, resolved), taken.length, n);
    }

    /**
     * Asserts that {@code out} (an FP8 engine's output on {@code hidden}) is within {@code tol} of the recipe. A raw error
     * within tol passes as it is; above it, the undecided codes are resolved ({@link #resolve}) and both figures printed.
     */
    public static void assertWithin(MoeLayerWeights w, float[] hidden, int tokens, float[] out, double rawError, double tol, String what) {
        if (rawError <= tol) return;
        Resolution r = resolve(of(w).forward(hidden, tokens), out);
        System.out.printf("[fp8 recipe] %s: %.3e > %.0e against the CPU emulation; %d code(s) within 2^-18 of an e4m3 midpoint, "
                + "%d taken the other way: %.3e%n", what, rawError, tol, r.undecided(), r.taken(), r.error());
        assertTrue(r.error() <= tol, what + ": relative error " + rawError + " > " + tol + ", and " + r.error() + " with the "
                + r.undecided() + " undecided e4m3 code(s) resolved (" + r.taken() + " taken the other way)");
    }
}
