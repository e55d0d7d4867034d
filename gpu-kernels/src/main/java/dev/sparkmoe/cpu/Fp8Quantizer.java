package dev.sparkmoe.cpu;

import dev.sparkmoe.checkpoint.Floats;

/**
 * The FP8 (E4M3) quantization recipe shared by the CPU emulation and the GPU kernels, so both see the same bytes.
 *
 * <p>Per block (1x128 for activations, 128x128 for weights): {@code amax = max|x|}; when amax is 0 (or below
 * {@link #ZERO_BLOCK_AMAX}) the scale is 1 and every code is 0; otherwise {@code scale = amax / 448f} and {@code q = e4m3(x * (448f / amax))}, the multiplier
 * computed once in fp32, rounded to nearest even and saturated at ±448. The real value is {@code e4m3(q) * scale}.
 */
public final class Fp8Quantizer {
    /** Channels per activation scale, and the side of a weight scale block. */
    public static final int BLOCK = 128;

    private Fp8Quantizer() {}

    public static int blocks(int n) { return (n + BLOCK - 1) / BLOCK; }

    /**
     * Quantizes activations {@code x[off .. off + rows*cols)} (row-major) per row per 128 columns.
     *
     * @param q      receives rows*cols E4M3 codes (row-major)
     * @param scales receives rows*blocks(cols) scales, row-major [row][block]
     */
    public static void quantizeActivations(float[] x, int off, int rows, int cols, byte[] q, float[] scales) {
        int nb = blocks(cols);
        for (int r = 0; r < rows; r++) {
            int row = off + r * cols;
            for (int b = 0; b < nb; b++) {
                int c0 = b * BLOCK, c1 = Math.min(cols, c0 + BLOCK);
                float amax = amax(x, row + c0, row + c1);
                scales[r * nb + b] = scaleOf(amax);
                float mult = multiplierOf(amax);
                for (int c = c0; c < c1; c++) q[r * cols + c] = Floats.floatToE4m3(x[row + c] * mult);
            }
        }
    }

    /** Replaces {@code x[off .. off + rows*cols)} by its quantized-then-dequantized value (what the FP8 GEMM sees). */
    public static void roundTripActivations(float[] x, int off, int rows, int cols) {
        int nb = blocks(cols);
        for (int r = 0; r < rows; r++) {
            int row = off + r * cols;
            for (int b = 0; b < nb; b++) {
                int c0 = b * BLOCK, c1 = Math.min(cols, c0 + BLOCK);
                float amax = amax(x, row + c0, row + c1);
                float scale = scaleOf(amax);
                float mult = multiplierOf(amax);
                for (int c = c0; c < c1; c++) x[row + c] = Floats.e4m3ToFloat(Floats.floatToE4m3(x[row + c] * mult)) * scale;
            }
        }
    }

    /**
     * Quantizes a weight [rows, cols] (row-major fp32) per {@code blockRows x blockCols} block, as DeepSeek's FP8
     * checkpoints store it: codes into {@code q} (rows*cols), scales into {@code scaleInv}
     * [ceil(rows/blockRows), ceil(cols/blockCols)].
     */
    public static void quantizeWeightBlocks(float[] w, int rows, int cols, int blockRows, int blockCols, byte[] q, float[] scaleInv) {
        int rb = (rows + blockRows - 1) / blockRows, cb = (cols + blockCols - 1) / blockCols;
        // block rows are independent: large matrices are quantized in parallel (same bits as sequential)
        java.util.stream.IntStream is = java.util.stream.IntStream.range(0, rb);
        (((long) rows * cols >= (1L << 20)) ? is.parallel() : is).forEach(i -> {
            int r0 = i * blockRows, r1 = Math.min(rows, r0 + blockRows);
            for (int j = 0; j < cb; j++) {
                int c0 = j * blockCols, c1 = Math.min(cols, c0 + blockCols);
                float amax = 0;
                for (int r = r0; r < r1; r++) for (int c = c0; c < c1; c++) amax = Math.max(amax, Math.abs(w[r * cols + c]));
                scaleInv[i * cb + j] = scaleOf(amax);
                float mult = multiplierOf(amax);
                for (int r = r0; r < r1; r++) for (int c = c0; c < c1; c++) q[r * cols + c] = Floats.floatToE4m3(w[r * cols + c] * mult);
            }
        });
    }

    private static float amax(float[] x, int from, int to) {
        float m = 0;
        for (int i = from; i < to; i++) m = Math.max(m, Math.abs(x[i]));
        return m;
    }

    /**
     * Blocks whose amax is below this are quantized as all zero: 448/amax would overflow fp32 below about 1.3e-36
     * (turning zeros into NaN), and values this small are zero next to any real activation. The GPU uses the same bound.
     */
    public static final float ZERO_BLOCK_AMAX = 0x1p-64f;

    /** The scale of a block with the given amax: amax / 448, or 1 for an all-zero block. */
    public static float scaleOf(float amax) { return amax < ZERO_BLOCK_AMAX ? 1f : amax / 448f; }

    /** The multiplier taking a block's values onto the E4M3 range: 448 / amax, or 0 for an all-zero block. */
    public static float multiplierOf(float amax) { return amax < ZERO_BLOCK_AMAX ? 0f : 448f / amax; }
}
