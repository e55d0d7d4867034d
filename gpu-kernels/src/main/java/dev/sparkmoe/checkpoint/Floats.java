package dev.sparkmoe.checkpoint;

/**
 * Conversions between float32 and the narrow formats of checkpoints: bfloat16, IEEE half, and OCP FP8 E4M3
 * ("e4m3fn": bias 7, no infinities, S.1111.111 is NaN, largest finite 448). Narrowing rounds to nearest even.
 */
public final class Floats {
    public static final float E4M3_MAX = 448f;
    private static final float[] E4M3_TO_FLOAT = new float[256];

    static {
        for (int b = 0; b < 256; b++) E4M3_TO_FLOAT[b] = decodeE4m3(b);
    }

    private Floats() {}

    public static float bf16ToFloat(short bits) { return Float.intBitsToFloat((bits & 0xffff) << 16); }

    /** float32 to bfloat16, round to nearest even; NaN stays NaN. */
    public static short floatToBf16(float f) {
        int x = Float.floatToRawIntBits(f);
        if ((x & 0x7fffffff) > 0x7f800000) return (short) ((x >>> 16) | 0x40);
        int rounding = 0x7fff + ((x >>> 16) & 1);
        return (short) ((x + rounding) >>> 16);
    }

    public static float f16ToFloat(short bits) {
        int h = bits & 0xffff;
        int sign = (h >>> 15) << 31;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        if (exp == 0x1f) return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        if (exp == 0) {
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    /** float32 to IEEE half, round to nearest even, overflow to infinity. */
    public static short floatToF16(float f) {
        int x = Float.floatToRawIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int abs = x & 0x7fffffff;
        if (abs > 0x7f800000) return (short) (sign | 0x7e00);
        if (abs >= 0x477ff000) return (short) (sign | 0x7c00); // rounds to >= 65520 -> inf
        if (abs < 0x38800000) { // subnormal half (or zero): value / 2^-24 rounded to even
            float scaled = Float.intBitsToFloat(abs) * 0x1p24f;
            return (short) (sign | (int) Math.rint(scaled));
        }
        int mant = abs & 0x7fffff;
        int exp = (abs >>> 23) - 112;
        int h = (exp << 10) | (mant >>> 13);
        int rest = mant & 0x1fff;
        if (rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1)) h++;
        return (short) (sign | h);
    }

    public static float e4m3ToFloat(byte b) { return E4M3_TO_FLOAT[b & 0xff]; }

    private static float decodeE4m3(int b) {
        int sign = (b >>> 7) & 1;
        int exp = (b >>> 3) & 0xf;
        int mant = b & 7;
        float v;
        if (exp == 0xf && mant == 7) v = Float.NaN;
        else if (exp == 0) v = mant * 0x1p-9f;
        else v = (1 + mant / 8f) * (float) Math.pow(2, exp - 7);
        return sign == 1 ? -v : v;
    }

    /**
     * float32 to E4M3, round to nearest even, saturating at ±448 (the recipe of the GPU FP8 path). NaN maps to NaN.
     */
    public static byte floatToE4m3(float f) {
        // Branch-light (random signs and rounding directions made the branchy version ~5x slower); checked equal to
        // the straightforward encoding for all 2^32 float bit patterns.
        int bits = Float.floatToRawIntBits(f);
        int abs = bits & 0x7fffffff;
        if (abs > 0x7f800000) return (byte) 0x7f;                 // NaN
        int sign = (bits >>> 24) & 0x80;
        if (abs >= 0x43e00000) return (byte) (sign | 0x7e);       // >= 448 (and infinity): saturate
        // normal range: round the 23-bit mantissa to 3 bits, ties to even (a carry moves into the exponent), rebias 127 -> 7
        int normal = ((abs + 0x7ffff + ((abs >>> 20) & 1)) >>> 20) - (120 << 3);
        // below 2^-6: multiples of 2^-9; adding and removing 2^23 rounds a * 2^9 to an integer, ties to even
        int subnormal = (int) ((Float.intBitsToFloat(abs) * 0x1p9f + 0x1p23f) - 0x1p23f);
        return (byte) (sign | (abs < 0x3c800000 ? subnormal : normal));
    }

    /** Rounds through E4M3 and back, the value the GPU's e4m3 operand holds. */
    public static float roundToE4m3(float f) { return e4m3ToFloat(floatToE4m3(f)); }
}
