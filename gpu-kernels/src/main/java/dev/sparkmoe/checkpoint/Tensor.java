package dev.sparkmoe.checkpoint;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A read-only view of one tensor's bytes (memory-mapped from its file), little-endian, row-major.
 * The bytes stay in the page cache; nothing is copied onto the Java heap until asked for.
 */
public final class Tensor {
    private final String name;
    private final DType dtype;
    private final long[] shape;
    private final ByteBuffer data;

    public Tensor(String name, DType dtype, long[] shape, ByteBuffer data) {
        this.name = name;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.data = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long expect = numel(shape) * dtype.bytes();
        if (this.data.remaining() != expect) {
            throw new CheckpointException("tensor '" + name + "' holds " + this.data.remaining() + " bytes but "
                    + dtype + Arrays.toString(shape) + " needs " + expect);
        }
    }

    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        return n;
    }

    public String name() { return name; }
    public DType dtype() { return dtype; }
    public long[] shape() { return shape.clone(); }
    public int rank() { return shape.length; }
    public long dim(int i) { return shape[i]; }
    public long numel() { return numel(shape); }

    /** The raw little-endian bytes, positioned at 0 (a fresh read-only view each call). */
    public ByteBuffer bytes() { return data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN); }

    /** Element {@code i} (flat, row-major) as float32. */
    public float get(long i) {
        int idx = Math.toIntExact(i);
        return switch (dtype) {
            case F32 -> data.getFloat(idx * 4);
            case BF16 -> Floats.bf16ToFloat(data.getShort(idx * 2));
            case F16 -> Floats.f16ToFloat(data.getShort(idx * 2));
            case F8_E4M3 -> Floats.e4m3ToFloat(data.get(idx));
        };
    }

    /** Copies {@code n} elements starting at flat index {@code from} into {@code dst[dstOff..]} as float32. */
    public void toFloats(long from, float[] dst, int dstOff, int n) {
        int base = Math.toIntExact(from);
        switch (dtype) {
            case F32 -> data.slice(base * 4, n * 4).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(dst, dstOff, n);
            case BF16 -> {
                for (int k = 0; k < n; k++) dst[dstOff + k] = Floats.bf16ToFloat(data.getShort((base + k) * 2));
            }
            case F16 -> {
                for (int k = 0; k < n; k++) dst[dstOff + k] = Floats.f16ToFloat(data.getShort((base + k) * 2));
            }
            case F8_E4M3 -> {
                for (int k = 0; k < n; k++) dst[dstOff + k] = Floats.e4m3ToFloat(data.get(base + k));
            }
        }
    }

    /** The whole tensor as float32 (flat, row-major). */
    public float[] toFloats() {
        float[] out = new float[Math.toIntExact(numel())];
        toFloats(0, out, 0, out.length);
        return out;
    }

    /** Throws a clear error unless this tensor has exactly {@code expected} as its shape. */
    public Tensor requireShape(long... expected) {
        if (!Arrays.equals(shape, expected)) {
            throw new CheckpointException("tensor '" + name + "' has shape " + Arrays.toString(shape)
                    + " but the config requires " + Arrays.toString(expected));
        }
        return this;
    }

    public Tensor requireDType(DType... allowed) {
        for (DType d : allowed) if (d == dtype) return this;
        throw new CheckpointException("tensor '" + name + "' has dtype " + dtype + "; expected one of " + Arrays.toString(allowed));
    }

    @Override public String toString() { return name + ":" + dtype + Arrays.toString(shape); }
}
