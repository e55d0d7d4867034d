package dev.sparkmoe.cpu;

import dev.sparkmoe.checkpoint.Floats;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The FP8 recipe on cases worked by hand. */
class Fp8QuantizerTest {
    @Test
    void activationsPerTokenPer128Channels() {
        // one row of 130 channels: block 0 (128 channels) has amax 2 -> multiplier 448/2 = 224, scale 2/448;
        // block 1 (the last 2 channels) has amax 0.5 -> multiplier 896, scale 0.5/448.
        float[] x = new float[130];
        x[0] = 2f;         // 2 * 224 = 448 -> 0x7e
        x[1] = -1f;        // -224 = -1.75 * 2^7 -> 0xf6
        x[2] = 0.01f;      // 2.24 -> nearest e4m3 2.25 (step 0.25 in [2, 4)) -> 0x41
        x[128] = 0.5f;     // 448 -> 0x7e
        x[129] = 0.125f;   // 112 = 1.75 * 2^6 -> 0x6e
        byte[] q = new byte[130];
        float[] scales = new float[2];
        Fp8Quantizer.quantizeActivations(x, 0, 1, 130, q, scales);
        assertArrayEquals(new float[] {2f / 448f, 0.5f / 448f}, scales);
        assertEquals(0x7e, q[0] & 0xff);
        assertEquals(0xf6, q[1] & 0xff);
        assertEquals(0x41, q[2] & 0xff);
        assertEquals(0x00, q[3] & 0xff);
        assertEquals(0x7e, q[128] & 0xff);
        assertEquals(0x6e, q[129] & 0xff);
        assertEquals(2.25f, Floats.e4m3ToFloat(q[2]));

        float[] rt = x.clone();
        Fp8Quantizer.roundTripActivations(rt, 0, 1, 130);
        assertEquals(448f * (2f / 448f), rt[0]);
        assertEquals(2.25f * (2f / 448f), rt[2]);
        assertEquals(112f * (0.5f / 448f), rt[129]);
    }

    @Test
    void zeroBlockHasScaleOneAndZeroCodes() {
        float[] x = new float[256];
        x[200] = 3f;
        byte[] q = new byte[256];
        float[] scales = new float[2];
        Fp8Quantizer.quantizeActivations(x, 0, 1, 256, q, scales);
        assertEquals(1f, scales[0]);
        for (int i = 0; i < 128; i++) assertEquals(0, q[i]);
        assertEquals(3f / 448f, scales[1]);
    }

    @Test
    void weightsPer128x128Block() {
        // [130, 2]: rows 0..127 form block (0, 0) with amax 4; rows 128..129 block (1, 0) with amax 1
        float[] w = new float[260];
        w[0] = 4f;
        w[3] = 1f;          // row 1, col 1: 1 * 112 = 112 -> 0x6e
        w[256] = 1f;        // row 128: 448
        w[259] = -0.25f;    // row 129, col 1: -112 -> 0xee
        byte[] q = new byte[260];
        float[] s = new float[2];
        Fp8Quantizer.quantizeWeightBlocks(w, 130, 2, 128, 128, q, s);
        assertArrayEquals(new float[] {4f / 448f, 1f / 448f}, s);
        assertEquals(0x7e, q[0] & 0xff);
        assertEquals(0x6e, q[3] & 0xff);
        assertEquals(0x7e, q[256] & 0xff);
        assertEquals(0xee, q[259] & 0xff);
    }

    @Test
    void aBlockOfVanishinglySmallValuesQuantizesToZeroNotNaN() {
        // 448/amax overflows fp32 for amax below ~1.3e-36; such a block must come out as exact zeros with scale 1.
        float[] x = new float[256];
        for (int i = 0; i < 128; i++) x[i] = (i % 3 - 1) * 1e-37f;
        for (int i = 128; i < 256; i++) x[i] = (i - 191) * 0.01f;
        byte[] q = new byte[256];
        float[] scales = new float[2];
        Fp8Quantizer.quantizeActivations(x, 0, 1, 256, q, scales);
        assertEquals(1f, scales[0]);
        for (int i = 0; i < 128; i++) assertEquals(0f, Math.abs(Floats.e4m3ToFloat(q[i])), "code " + i); // +0 or -0
        assertEquals(0.64f / 448f, scales[1]);
        float[] rt = x.clone();
        Fp8Quantizer.roundTripActivations(rt, 0, 1, 256);
        for (int i = 0; i < 128; i++) assertEquals(0f, Math.abs(rt[i]), "value " + i);
        for (int i = 128; i < 256; i++) assertEquals(x[i], rt[i], Math.abs(x[i]) / 8 + 1e-6f, "value " + i);
    }
}
