package dev.sparkmoe.checkpoint;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The narrow-format conversions against values worked by hand from the formats' definitions (OCP FP8 E4M3 "fn":
 * bias 7, 3 mantissa bits, subnormal step 2^-9, largest 448, S.1111.111 NaN; bfloat16; IEEE binary16), with
 * round-to-nearest-even (the rules numpy's ml_dtypes implements).
 */
class FloatsTest {
    private static int e4m3(float f) { return Floats.floatToE4m3(f) & 0xff; }

    @Test
    void e4m3ExactValues() {
        assertEquals(0x38, e4m3(1f));           // exponent 7 (= 2^0), mantissa 0
        assertEquals(0xb8, e4m3(-1f));
        assertEquals(0x7e, e4m3(448f));         // 1.75 * 2^8, the largest finite
        assertEquals(0xfe, e4m3(-448f));
        assertEquals(0x08, e4m3(0x1p-6f));      // smallest normal
        assertEquals(0x01, e4m3(0x1p-9f));      // smallest subnormal
        assertEquals(0x07, e4m3(7 * 0x1p-9f));  // largest subnormal
        assertEquals(0x00, e4m3(0f));
        assertEquals(0x80, e4m3(-0f));
        assertEquals(0x46, e4m3(3.5f));         // 1.75 * 2^1: exponent field 8 (0x40), mantissa 6
    }

    @Test
    void e4m3RoundsToNearestEven() {
        assertEquals(0x38, e4m3(1.0625f));      // halfway 1 | 1.125: even mantissa 0
        assertEquals(0x39, e4m3(Math.nextUp(1.0625f)));
        assertEquals(0x3a, e4m3(1.1875f));      // halfway 1.125 | 1.25: even mantissa 2
        assertEquals(0x39, e4m3(Math.nextDown(1.1875f)));
        assertEquals(0x40, e4m3(1.9375f));      // halfway 1.875 | 2: rounds up into the next binade
        assertEquals(0x00, e4m3(0x1p-10f));     // halfway 0 | 2^-9: even 0
        assertEquals(0x01, e4m3(Math.nextUp(0x1p-10f)));
        assertEquals(0x02, e4m3(1.5f * 0x1p-9f)); // halfway 1 | 2 steps: even 2
        assertEquals(0x02, e4m3(2.5f * 0x1p-9f)); // halfway 2 | 3 steps: even 2
        assertEquals(0x08, e4m3(7.5f * 0x1p-9f)); // halfway largest subnormal | smallest normal: even (normal, mantissa 0)
        assertEquals(0x7e, e4m3(432f));         // halfway 416 | 448: even mantissa 6 (448)
        assertEquals(0x7d, e4m3(Math.nextDown(432f)));
    }

    @Test
    void e4m3SaturatesAndKeepsNaN() {
        assertEquals(0x7e, e4m3(449f));
        assertEquals(0x7e, e4m3(464f));         // halfway 448 | 480 (480 does not exist): 448
        assertEquals(0x7e, e4m3(1e30f));
        assertEquals(0x7e, e4m3(Float.POSITIVE_INFINITY));
        assertEquals(0xfe, e4m3(Float.NEGATIVE_INFINITY));
        assertEquals(0x7f, e4m3(Float.NaN));
        assertTrue(Float.isNaN(Floats.e4m3ToFloat((byte) 0x7f)));
        assertTrue(Float.isNaN(Floats.e4m3ToFloat((byte) 0xff)));
    }

    @Test
    void e4m3DecodesEveryCodeAndRoundTrips() {
        assertEquals(448f, Floats.e4m3ToFloat((byte) 0x7e));
        assertEquals(0.001953125f, Floats.e4m3ToFloat((byte) 0x01));
        assertEquals(-3.5f, Floats.e4m3ToFloat((byte) 0xc6));
        assertEquals(1.125f, Floats.e4m3ToFloat((byte) 0x39));
        float previous = -1;
        for (int code = 0; code < 0x7f; code++) {  // positive finite codes increase strictly and round-trip
            float v = Floats.e4m3ToFloat((byte) code);
            assertTrue(v > previous, "code " + code);
            previous = v;
            assertEquals(code, e4m3(v), "round trip of " + v);
            assertEquals(code | 0x80, e4m3(-v == 0 ? -0f : -v), "round trip of " + -v);
        }
    }

    @Test
    void bf16() {
        assertEquals((short) 0x3f80, Floats.floatToBf16(1f));
        assertEquals((short) 0xc000, Floats.floatToBf16(-2f));
        assertEquals((short) 0x3f80, Floats.floatToBf16(1f + 0x1p-8f));       // halfway 1 | 1+2^-7: even
        assertEquals((short) 0x3f81, Floats.floatToBf16(Math.nextUp(1f + 0x1p-8f)));
        assertEquals((short) 0x3f82, Floats.floatToBf16(1f + 3 * 0x1p-8f));   // halfway 0x3f81 | 0x3f82: even
        assertEquals((short) 0x7f80, Floats.floatToBf16(Float.MAX_VALUE));    // above the top midpoint: infinity
        assertEquals((short) 0x7f80, Floats.floatToBf16(Float.POSITIVE_INFINITY));
        assertEquals((short) 0x0001, Floats.floatToBf16(0x1p-133f));          // bf16 keeps fp32's subnormals
        assertTrue(Float.isNaN(Floats.bf16ToFloat(Floats.floatToBf16(Float.NaN))));
        assertEquals(1.0078125f, Floats.bf16ToFloat((short) 0x3f81));
        assertEquals(-2f, Floats.bf16ToFloat((short) 0xc000));
    }

    @Test
    void f16() {
        assertEquals((short) 0x3c00, Floats.floatToF16(1f));
        assertEquals((short) 0x7bff, Floats.floatToF16(65504f));               // largest finite
        assertEquals((short) 0x7bff, Floats.floatToF16(65519f));               // below the midpoint to infinity
        assertEquals((short) 0x7c00, Floats.floatToF16(65520f));               // midpoint, odd 0x7bff -> infinity
        assertEquals((short) 0xfc00, Floats.floatToF16(Float.NEGATIVE_INFINITY));
        assertEquals((short) 0x0400, Floats.floatToF16(0x1p-14f));             // smallest normal
        assertEquals((short) 0x0001, Floats.floatToF16(0x1p-24f));             // smallest subnormal
        assertEquals((short) 0x0000, Floats.floatToF16(0x1p-25f));             // halfway 0 | 2^-24: even
        assertEquals((short) 0x0002, Floats.floatToF16(3 * 0x1p-25f));         // halfway 1 | 2 steps: even
        assertEquals((short) 0x0400, Floats.floatToF16(0x1p-14f - 0x1p-25f));  // halfway largest subnormal | smallest normal
        assertEquals((short) 0x3c00, Floats.floatToF16(1f + 0x1p-11f));        // halfway 1 | 1+2^-10: even
        assertEquals((short) 0x3c02, Floats.floatToF16(1f + 3 * 0x1p-11f));    // halfway 0x3c01 | 0x3c02: even
        assertEquals((short) 0x8000, Floats.floatToF16(-0f));
        assertTrue(Float.isNaN(Floats.f16ToFloat(Floats.floatToF16(Float.NaN))));
        assertEquals(Float.POSITIVE_INFINITY, Floats.f16ToFloat((short) 0x7c00));
        assertEquals(0x1p-24f, Floats.f16ToFloat((short) 0x0001));
        assertEquals(-65504f, Floats.f16ToFloat((short) 0xfbff));
        assertEquals(1.0009765625f, Floats.f16ToFloat((short) 0x3c01));
    }

    /** E4M3 encoding written the straightforward way (sign, exponent, mantissa rounded with an explicit tie rule). */
    private static int straightforwardE4m3(float f) {
        if (Float.isNaN(f)) return 0x7f;
        int sign = f < 0 || (f == 0 && 1 / f < 0) ? 0x80 : 0;
        float a = Math.abs(f);
        if (a >= 448f) return sign | 0x7e;
        if (a < 0x1p-6f) return sign | (int) Math.rint(a * 0x1p9f); // rint: half to even; may reach 8 = 2^-6
        int bits = Float.floatToRawIntBits(a);
        int exp = (bits >>> 23) - 127, m3 = (bits >>> 20) & 7, rest = bits & 0xfffff;
        if (rest > 0x80000 || (rest == 0x80000 && (m3 & 1) == 1)) m3++;
        if (m3 == 8) { m3 = 0; exp++; }
        return sign | Math.min(0x7e, ((exp + 7) << 3) | m3);
    }

    @Test
    void e4m3MatchesTheStraightforwardEncoding() {
        // every sign, exponent and 3-bit mantissa with the rounding bits just below, at, and above the tie (and zero);
        // then a stride through all bit patterns. (All 2^32 patterns were checked once by hand: 75 s, too slow here.)
        for (int top = 0; top < (1 << 12); top++) {
            for (int rest : new int[] {0, 1, 0x7ffff, 0x80000, 0x80001, 0xfffff}) {
                int b = (top << 20) | rest;
                float f = Float.intBitsToFloat(b);
                assertEquals(straightforwardE4m3(f), e4m3(f), () -> "bits " + Integer.toHexString(b));
            }
        }
        for (long b = 0; b < (1L << 32); b += 4093) {
            float f = Float.intBitsToFloat((int) b);
            long bb = b;
            assertEquals(straightforwardE4m3(f), e4m3(f), () -> "bits " + Long.toHexString(bb));
        }
    }
}
