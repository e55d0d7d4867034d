package dev.sparkmoe.cpu;

import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.Floats;
import dev.sparkmoe.checkpoint.Tensor;
import dev.sparkmoe.checkpoint.WeightMatrix;
import dev.sparkmoe.engine.Precision;

import java.nio.ShortBuffer;

/**
 * An expert weight as a given precision multiplies with it, in fp32 row-major [rows, cols]:
 * <ul>
 *   <li>F8_E4M3 checkpoints (both precisions): each e4m3 value times its block's {@code scale_inv}.</li>
 *   <li>F32/BF16/F16 in {@link Precision#NATIVE}: the stored value, widened exactly.</li>
 *   <li>F32/BF16/F16 in {@link Precision#FP8}: quantized at load per 128x128 block ({@link Fp8Quantizer}), then
 *       each e4m3 value times its block scale, as the GPU's FP8 GEMM sees it.</li>
 * </ul>
 * The reference and the fast path both take their weights from here, so they multiply identical values.
 */
public final class WeightValues {
    private WeightValues() {}

    public static float[] of(WeightMatrix m, Precision p) {
        float[] out = new float[Math.multiplyExact(m.rows(), m.cols())];
        into(m, p, out, 0);
        return out;
    }

    /** Writes the [rows, cols] values into {@code dst[off ..]}. */
    public static void into(WeightMatrix m, Precision p, float[] dst, int off) {
        int rows = m.rows(), cols = m.cols(), n = Math.multiplyExact(rows, cols);
        if (m.isBlockScaled()) {
            float[] row = new float[cols];
            for (int r = 0; r < rows; r++) {
                m.rowToFloats(r, row);
                System.arraycopy(row, 0, dst, off + r * cols, cols);
            }
            return;
        }
        widen(m.weight(), dst, off, n);
        if (p == Precision.NATIVE) return;
        int b = Fp8Quantizer.BLOCK, colBlocks = Fp8Quantizer.blocks(cols);
        float[] values = new float[n];
        System.arraycopy(dst, off, values, 0, n);
        byte[] q = new byte[n];
        float[] scales = new float[Fp8Quantizer.blocks(rows) * colBlocks];
        Fp8Quantizer.quantizeWeightBlocks(values, rows, cols, b, b, q, scales);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                dst[off + r * cols + c] = Floats.e4m3ToFloat(q[r * cols + c]) * scales[(r / b) * colBlocks + c / b];
            }
        }
    }

    /** The first {@code n} elements of an F32/BF16/F16 tensor as fp32; BF16 in bulk (a shift), the load-time hot spot. */
    private static void widen(Tensor t, float[] dst, int off, int n) {
        if (t.dtype() != DType.BF16) {
            t.toFloats(0, dst, off, n);
            return;
        }
        ShortBuffer src = t.bytes().asShortBuffer();
        short[] chunk = new short[Math.min(n, 1 << 16)];
        for (int at = 0; at < n; at += chunk.length) {
            int len = Math.min(chunk.length, n - at);
            src.get(at, chunk, 0, len);
            for (int i = 0; i < len; i++) dst[off + at + i] = Float.intBitsToFloat(chunk[i] << 16);
        }
    }
}
