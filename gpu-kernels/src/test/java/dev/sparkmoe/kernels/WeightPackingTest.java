package dev.sparkmoe.kernels;

import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.Floats;
import dev.sparkmoe.checkpoint.Tensor;
import dev.sparkmoe.checkpoint.WeightMatrix;
import dev.sparkmoe.cpu.Fp8Quantizer;
import dev.sparkmoe.kernels.WeightPacking.Format;
import dev.sparkmoe.testing.TensorChecks;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WeightPackingTest {
    private static final int INTER = 256, HIDDEN = 384;

    /** The layout of grouped_gemm.cuh written out independently: slab-major, 128-byte rows, chunk ^= row % 8. */
    private static long expectedOffset(int row, int col, int rows, int esize) {
        int byteInRow = col * esize;
        int slab = byteInRow / 128, chunk = (byteInRow % 128) / 16;
        return (long) slab * rows * 128 + row * 128L + 16L * (chunk ^ (row % 8)) + byteInRow % 16;
    }

    private static WeightMatrix f32Matrix(String name, float[] v, int rows, int cols) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) b.putFloat(x);
        return WeightMatrix.of(new Tensor(name, DType.F32, new long[] {rows, cols}, b.flip()), null, 0, 0);
    }

    @Test
    void bf16W1InterleavesGateAndUpInGroupsOfEight() {
        long seed = TensorChecks.freshSeed();
        float[] gate = TensorChecks.randomNormal(seed, INTER * HIDDEN, 1.0);
        float[] up = TensorChecks.randomNormal(seed + 1, INTER * HIDDEN, 1.0);
        ByteBuffer dst = ByteBuffer.allocate((int) WeightPacking.w1Bytes(INTER, HIDDEN, Format.BF16) + 64).order(ByteOrder.LITTLE_ENDIAN);
        dst.position(64); // packing starts at the buffer's position (the caller's expert offset)
        WeightPacking.packW1(f32Matrix("gate", gate, INTER, HIDDEN), f32Matrix("up", up, INTER, HIDDEN), Format.BF16, dst, null);
        assertEquals(dst.capacity(), dst.position(), "seed " + seed);
        int rows = 2 * INTER;
        for (int p = 0; p < rows; p++) {
            boolean isUp = (p % 16) >= 8;
            int src = (p / 16) * 8 + p % 8;
            assertEquals(isUp ? INTER + src : src, WeightPacking.w1PackedRow(p, INTER));
            for (int c = 0; c < HIDDEN; c++) {
                float v = (isUp ? up : gate)[src * HIDDEN + c];
                short got = dst.getShort(64 + (int) expectedOffset(p, c, rows, 2));
                assertEquals(Floats.floatToBf16(v), got, "packed row " + p + " col " + c + " seed " + seed);
            }
        }
    }

    @Test
    void fp8W2KeepsCheckpointCodesAndScales() {
        long seed = TensorChecks.freshSeed();
        SplittableRandom r = new SplittableRandom(seed);
        byte[] codes = new byte[HIDDEN * INTER];
        for (int i = 0; i < codes.length; i++) codes[i] = (byte) (r.nextInt(256) & 0xf7 | 1); // avoid NaN codes (0x7f/0xff)
        float[] scales = new float[(HIDDEN / 128) * (INTER / 128)];
        ByteBuffer sb = ByteBuffer.allocate(scales.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < scales.length; i++) sb.putFloat(scales[i] = (float) (0.001 + r.nextDouble()));
        Tensor w = new Tensor("down", DType.F8_E4M3, new long[] {HIDDEN, INTER}, ByteBuffer.wrap(codes));
        Tensor s = new Tensor("down_scale_inv", DType.F32, new long[] {HIDDEN / 128, INTER / 128}, sb.flip());
        ByteBuffer dst = ByteBuffer.allocate((int) WeightPacking.w2Bytes(INTER, HIDDEN, Format.FP8));
        FloatBuffer sd = FloatBuffer.allocate(WeightPacking.w2ScaleFloats(INTER, HIDDEN));
        WeightPacking.packW2(WeightMatrix.of(w, s, 128, 128), Format.FP8, dst, sd);
        for (int row = 0; row < HIDDEN; row++) {
            for (int c = 0; c < INTER; c++) {
                assertEquals(codes[row * INTER + c], dst.get((int) expectedOffset(row, c, HIDDEN, 1)), "row " + row + " col " + c);
            }
        }
        for (int i = 0; i < scales.length; i++) assertEquals(scales[i], sd.get(i));
    }

    @Test
    void fp8W1FromFloatsQuantizesPer128Block() {
        long seed = TensorChecks.freshSeed();
        float[] gate = TensorChecks.randomNormal(seed, INTER * HIDDEN, 0.05);
        float[] up = TensorChecks.randomNormal(seed + 7, INTER * HIDDEN, 3.0);
        byte[] gq = new byte[gate.length], uq = new byte[up.length];
        float[] gs = new float[(INTER / 128) * (HIDDEN / 128)], us = new float[gs.length];
        Fp8Quantizer.quantizeWeightBlocks(gate, INTER, HIDDEN, 128, 128, gq, gs);
        Fp8Quantizer.quantizeWeightBlocks(up, INTER, HIDDEN, 128, 128, uq, us);
        ByteBuffer dst = ByteBuffer.allocate((int) WeightPacking.w1Bytes(INTER, HIDDEN, Format.FP8));
        FloatBuffer sd = FloatBuffer.allocate(WeightPacking.w1ScaleFloats(INTER, HIDDEN));
        WeightPacking.packW1(f32Matrix("gate", gate, INTER, HIDDEN), f32Matrix("up", up, INTER, HIDDEN), Format.FP8, dst, sd);
        int rows = 2 * INTER;
        for (int p = 0; p < rows; p++) {
            int orig = WeightPacking.w1PackedRow(p, INTER);
            byte[] q = orig < INTER ? gq : uq;
            int src = orig % INTER;
            for (int c = 0; c < HIDDEN; c++) assertEquals(q[src * HIDDEN + c], dst.get((int) expectedOffset(p, c, rows, 1)), "seed " + seed);
        }
        for (int i = 0; i < gs.length; i++) {
            assertEquals(gs[i], sd.get(i)); // gate row blocks first, then up: the blocks of [gate; up]
            assertEquals(us[i], sd.get(gs.length + i));
        }
        assertTrue(gs[0] < us[0], "different magnitudes give different scales");
    }

    @Test
    void activationOffsetsCoverEveryByteOnce() {
        int k = 256, rows = 256;
        for (int esize : new int[] {1, 2}) {
            boolean[] seen = new boolean[rows * k * esize];
            for (int row = 0; row < rows; row++) {
                for (int c = 0; c < k; c++) {
                    long off = WeightPacking.activationOffset(row, c, k, esize);
                    for (int b = 0; b < esize; b++) {
                        assertTrue(!seen[(int) off + b], "offset " + off + " twice");
                        seen[(int) off + b] = true;
                    }
                    // inside a 128-row block the layout is the weight layout of a 128-row matrix
                    assertEquals((row / 128) * 128L * k * esize + expectedOffset(row % 128, c, 128, esize), off);
                }
            }
        }
        assertEquals(128 + 3, WeightPacking.activationScaleOffset(3, 1, 256));
        assertEquals(2 * 128 + 5, WeightPacking.activationScaleOffset(128 + 5, 0, 256));
    }

    @Test
    void rejectsShapesTheKernelsCannotRun() {
        float[] v = new float[100 * 128];
        WeightMatrix odd = f32Matrix("odd", v, 100, 128);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> WeightPacking.packW2(odd, Format.BF16, ByteBuffer.allocate(100 * 128 * 2), null));
        assertTrue(e.getMessage().contains("odd") && e.getMessage().contains("128"), e.getMessage());
        WeightMatrix ok = f32Matrix("w", new float[128 * 128], 128, 128);
        e = assertThrows(IllegalArgumentException.class, () -> WeightPacking.packW2(ok, Format.BF16, ByteBuffer.allocate(10), null));
        assertTrue(e.getMessage().contains("needs"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> WeightPacking.packW2(ok, Format.FP8, ByteBuffer.allocate(128 * 128), null));
        assertTrue(e.getMessage().contains("scale buffer is null"), e.getMessage());
    }
}
