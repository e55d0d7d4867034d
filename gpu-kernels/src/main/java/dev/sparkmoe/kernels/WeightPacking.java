package dev.sparkmoe.kernels;

import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.Floats;
import dev.sparkmoe.checkpoint.WeightMatrix;
import dev.sparkmoe.cpu.Fp8Quantizer;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * Packs expert weights into the device layouts of grouped_gemm.cuh: per expert, K cut into 128-byte slabs, each slab
 * holding all rows of 128 bytes with the 16-byte chunks swizzled by row % 8 (the shared-memory image wgmma reads,
 * so a tile is one bulk copy); W1 interleaves gate and up rows in groups of 8. FP8 weights keep their checkpoint
 * codes and 128x128 scales; BF16/F16/F32 weights packed as FP8 are block-quantized with {@link Fp8Quantizer}; as
 * BF16, every source type is rounded to bf16 (FP8 weights dequantized first).
 *
 * <p>The caller lays experts out back to back: expert e's weights start at {@code e * w1Bytes(...)} (resp.
 * {@code w2Bytes}) and its scales at {@code e * w1ScaleFloats(...)} floats.
 */
public final class WeightPacking {
    /** Bytes per packed row of a slab (the wgmma 128-byte swizzle span). */
    public static final int SLAB_BYTES = 128;

    /** The device element format of packed weights. */
    public enum Format {
        BF16(2), FP8(1);

        private final int bytes;

        Format(int bytes) { this.bytes = bytes; }

        public int bytes() { return bytes; }
    }

    private WeightPacking() {}

    /** Bytes of one expert's packed W1 ([gate; up], 2*inter rows, hidden columns). */
    public static long w1Bytes(int inter, int hidden, Format f) { return 2L * inter * hidden * f.bytes(); }

    /** Bytes of one expert's packed W2 (hidden rows, inter columns). */
    public static long w2Bytes(int inter, int hidden, Format f) { return (long) hidden * inter * f.bytes(); }

    /** Floats of one expert's W1 scales (FP8): [2*inter/128][hidden/128]. */
    public static int w1ScaleFloats(int inter, int hidden) { return 2 * (inter / 128) * (hidden / 128); }

    /** Floats of one expert's W2 scales (FP8): [hidden/128][inter/128]. */
    public static int w2ScaleFloats(int inter, int hidden) { return (hidden / 128) * (inter / 128); }

    /** The [gate; up] row stored at packed W1 row {@code p} (mirrors moe_w1_packed_row). */
    public static int w1PackedRow(int p, int inter) {
        int base = (p >>> 4) * 8 + (p & 7);
        return (p & 8) != 0 ? inter + base : base;
    }

    /** Byte offset of (row, col) inside one expert's packed matrix of {@code rows} rows (mirrors moe_weight_offset). */
    public static long weightOffset(int row, int col, int rows, int esize) {
        int byteInRow = col * esize;
        int slab = byteInRow >>> 7, b = byteInRow & 127;
        int chunk = (b >>> 4) ^ (row & 7);
        return (long) slab * rows * SLAB_BYTES + (long) row * SLAB_BYTES + chunk * 16 + (b & 15);
    }

    /** Byte offset of (row, col) in an activation matrix with {@code k} columns (mirrors moe_act_offset). */
    public static long activationOffset(int row, int col, int k, int esize) {
        int byteInRow = col * esize;
        int slab = byteInRow >>> 7, b = byteInRow & 127;
        int chunk = (b >>> 4) ^ (row & 7);
        return (long) (row >>> 7) * (128L * k * esize) + (long) slab * 16384 + (row & 127) * 128 + chunk * 16 + (b & 15);
    }

    /** Float index of the FP8 scale of (row, K block kb) of an activation matrix with k columns (moe_act_scale_offset). */
    public static long activationScaleOffset(int row, int kb, int k) {
        return (long) (row >>> 7) * (k / 128) * 128 + (long) kb * 128 + (row & 127);
    }

    /**
     * Packs one expert's gate and up ([inter, hidden] each) into {@code dst} from its position on (w1Bytes bytes) and,
     * for FP8, its scales into {@code scales} from its position on (w1ScaleFloats floats; null for BF16).
     */
    public static void packW1(WeightMatrix gate, WeightMatrix up, Format f, ByteBuffer dst, FloatBuffer scales) {
        int inter = gate.rows(), hidden = gate.cols();
        requireShape(gate, up.rows(), up.cols(), "up", up.name());
        checkDims(gate.name(), inter, hidden);
        Narrow g = narrow(gate, f), u = narrow(up, f);
        int rows = 2 * inter;
        ByteBuffer out = target(dst, w1Bytes(inter, hidden, f), gate.name());
        for (int p = 0; p < rows; p++) {
            int src = w1PackedRow(p, inter);
            Narrow m = src < inter ? g : u;
            scatterRow(m.codes, src < inter ? src : src - inter, hidden * f.bytes(), out, p, rows);
        }
        if (f == Format.FP8) {
            FloatBuffer s = scaleTarget(scales, w1ScaleFloats(inter, hidden), gate.name());
            s.put(g.scales).put(u.scales);
        }
    }

    /** Packs one expert's down projection ([hidden, inter]) like {@link #packW1}. */
    public static void packW2(WeightMatrix down, Format f, ByteBuffer dst, FloatBuffer scales) {
        int hidden = down.rows(), inter = down.cols();
        checkDims(down.name(), hidden, inter);
        Narrow d = narrow(down, f);
        ByteBuffer out = target(dst, w2Bytes(inter, hidden, f), down.name());
        for (int r = 0; r < hidden; r++) scatterRow(d.codes, r, inter * f.bytes(), out, r, hidden);
        if (f == Format.FP8) scaleTarget(scales, w2ScaleFloats(inter, hidden), down.name()).put(d.scales);
    }

    /** Row-major device codes of a matrix plus its 128x128 scales (FP8 only). */
    private record Narrow(byte[] codes, float[] scales) {}

    private static Narrow narrow(WeightMatrix w, Format f) {
        int rows = w.rows(), cols = w.cols();
        byte[] codes = new byte[Math.multiplyExact(Math.multiplyExact(rows, cols), f.bytes())];
        if (f == Format.BF16) {
            if (w.dtype() == DType.BF16) {
                w.weight().bytes().get(codes);
            } else {
                ByteBuffer out = ByteBuffer.wrap(codes).order(ByteOrder.LITTLE_ENDIAN);
                float[] row = new float[cols];
                for (int r = 0; r < rows; r++) {
                    w.rowToFloats(r, row);
                    for (float v : row) out.putShort(Floats.floatToBf16(v));
                }
            }
            return new Narrow(codes, null);
        }
        float[] scales = new float[(rows / 128) * (cols / 128)];
        if (w.dtype() == DType.F8_E4M3) {
            if (w.blockRows() != 128 || w.blockCols() != 128) {
                throw new IllegalArgumentException("FP8 weight '" + w.name() + "' has " + w.blockRows() + "x" + w.blockCols()
                        + " scale blocks; the GPU kernels need 128x128");
            }
            w.weight().bytes().get(codes);
            for (int i = 0; i < scales.length; i++) scales[i] = w.scaleInv().get(i);
        } else {
            Fp8Quantizer.quantizeWeightBlocks(w.toFloats(), rows, cols, 128, 128, codes, scales);
        }
        return new Narrow(codes, scales);
    }

    /** Copies source row {@code srcRow} (rowBytes bytes) to packed row {@code dstRow}, chunk-swizzled per slab. */
    private static void scatterRow(byte[] codes, int srcRow, int rowBytes, ByteBuffer out, int dstRow, int rows) {
        int base = srcRow * rowBytes;
        for (int slab = 0; slab < rowBytes / SLAB_BYTES; slab++) {
            int slabBase = (int) ((long) slab * rows * SLAB_BYTES + (long) dstRow * SLAB_BYTES);
            for (int c = 0; c < 8; c++) {
                out.put(slabBase + ((c ^ (dstRow & 7)) << 4), codes, base + slab * SLAB_BYTES + c * 16, 16);
            }
        }
    }

    private static ByteBuffer target(ByteBuffer dst, long bytes, String name) {
        if (dst == null) throw new IllegalArgumentException("packing '" + name + "': destination buffer is null");
        if (dst.remaining() < bytes) {
            throw new IllegalArgumentException("packing '" + name + "': destination has " + dst.remaining() + " bytes left, needs " + bytes);
        }
        ByteBuffer out = dst.slice(dst.position(), (int) bytes);
        dst.position(dst.position() + (int) bytes);
        return out;
    }

    private static FloatBuffer scaleTarget(FloatBuffer scales, int floats, String name) {
        if (scales == null) throw new IllegalArgumentException("packing FP8 '" + name + "': scale buffer is null");
        if (scales.remaining() < floats) {
            throw new IllegalArgumentException("packing FP8 '" + name + "': scale buffer has " + scales.remaining() + " floats left, needs " + floats);
        }
        return scales;
    }

    private static void requireShape(WeightMatrix ref, int rows, int cols, String what, String name) {
        if (rows != ref.rows() || cols != ref.cols()) {
            throw new IllegalArgumentException(what + " '" + name + "' is [" + rows + ", " + cols + "] but '" + ref.name()
                    + "' is [" + ref.rows() + ", " + ref.cols() + "]");
        }
    }

    private static void checkDims(String name, int rows, int cols) {
        if (rows % 128 != 0 || cols % 128 != 0) {
            throw new IllegalArgumentException("weight '" + name + "' is [" + rows + ", " + cols
                    + "]; the GPU kernels need both dimensions to be multiples of 128");
        }
    }
}
