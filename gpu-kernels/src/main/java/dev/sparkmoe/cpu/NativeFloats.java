package dev.sparkmoe.cpu;

import dev.sparkmoe.engine.MoeEngineException;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * A float32 array in native memory (malloc), readable by OpenBLAS without JNI copies, freed explicitly by its one
 * owner. Deliberately untracked by JavaCPP's garbage-collection accounting: weight buffers are large and long-lived,
 * and their size is governed by {@link CpuEngineSettings#RESIDENT_WEIGHT_BYTES} instead.
 */
final class NativeFloats implements AutoCloseable {
    private final long length;
    private FloatPointer base;

    NativeFloats(long length) {
        if (length <= 0) throw new IllegalArgumentException("length must be positive, got " + length);
        Pointer p = Pointer.malloc(Math.multiplyExact(length, 4L));
        if (p == null || p.isNull()) throw new MoeEngineException("cannot allocate " + (length * 4) + " bytes of native memory for the CPU engine");
        this.base = new FloatPointer(p);
        this.length = length;
    }

    long length() { return length; }

    /** A pointer to element {@code at}, a fresh object so concurrent callers never share a position. */
    FloatPointer at(long at) {
        check(at, 0);
        return new FloatPointer(base).position(at);
    }

    void write(long at, float[] src, int off, int n) {
        check(at, n);
        new FloatPointer(base).position(at).put(src, off, n);
    }

    void read(long at, float[] dst, int off, int n) {
        check(at, n);
        new FloatPointer(base).position(at).get(dst, off, n);
    }

    private void check(long at, long n) {
        if (base == null) throw new IllegalStateException("native buffer already freed");
        if (at < 0 || n < 0 || at + n > length) throw new IndexOutOfBoundsException("[" + at + ", " + (at + n) + ") outside [0, " + length + ")");
    }

    @Override
    public void close() {
        if (base == null) throw new IllegalStateException("native buffer closed twice");
        Pointer.free(base);
        base = null;
    }
}
