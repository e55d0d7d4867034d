package dev.sparkmoe.testing;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** The one shared test utility for tensor closeness, poisoning and fresh random inputs. */
public final class TensorChecks {
    /** A value no engine produces by accident: a quiet NaN with a payload. */
    public static final float POISON = Float.intBitsToFloat(0x7fc0dead);

    private TensorChecks() {}

    /** A fresh seed per run (printed by callers on failure), so every run draws new inputs. */
    public static long freshSeed() { return System.nanoTime() ^ Thread.currentThread().getId() * 0x9E3779B97F4A7C15L; }

    /** Normally distributed values with the given standard deviation; never all zero. */
    public static float[] randomNormal(long seed, int n, double std) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i += 2) {
            double u1 = 1.0 - r.nextDouble(), u2 = r.nextDouble();
            double rad = Math.sqrt(-2 * Math.log(u1));
            a[i] = (float) (std * rad * Math.cos(2 * Math.PI * u2));
            if (i + 1 < n) a[i + 1] = (float) (std * rad * Math.sin(2 * Math.PI * u2));
        }
        return a;
    }

    public static float[] poisoned(int n) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, POISON);
        return a;
    }

    /** ‖out − ref‖ / ‖ref‖ in float64; infinite when any output is NaN (so poison left behind fails). */
    public static double relativeError(float[] out, double[] ref) {
        if (out.length != ref.length) throw new IllegalArgumentException("lengths " + out.length + " vs " + ref.length);
        double num = 0, den = 0;
        for (int i = 0; i < out.length; i++) {
            if (!Float.isFinite(out[i])) return Double.POSITIVE_INFINITY;
            double d = out[i] - ref[i];
            num += d * d;
            den += ref[i] * ref[i];
        }
        return Math.sqrt(num) / Math.sqrt(den);
    }

    public static double relativeError(float[] out, float[] ref) {
        double[] r = new double[ref.length];
        for (int i = 0; i < r.length; i++) r[i] = ref[i];
        return relativeError(out, r);
    }

    /** Fails naming the first row (of width {@code rowWidth}) still holding poison or any non-finite value. */
    public static void assertAllWritten(float[] out, int rowWidth, String what) {
        for (int i = 0; i < out.length; i++) {
            if (!Float.isFinite(out[i])) fail(what + ": row " + (i / rowWidth) + " column " + (i % rowWidth) + " is " + out[i] + " (unwritten or non-finite)");
        }
    }

    public static void assertClose(float[] out, double[] ref, double tol, String what) {
        double err = relativeError(out, ref);
        assertTrue(err <= tol, what + ": relative error " + err + " > " + tol);
    }

    public static void assertClose(float[] out, float[] ref, double tol, String what) {
        double err = relativeError(out, ref);
        assertTrue(err <= tol, what + ": relative error " + err + " > " + tol);
    }
}
