package dev.sparkmoe.cuda;

import jcuda.NativePointerObject;
import jcuda.Pointer;

/** Conversion of launch arguments into the driver's parameter pointers. */
public final class KernelArgs {
    private KernelArgs() {}

    /** A device pointer {@code byteOffset} bytes into {@code buffer}. */
    public record Offset(DeviceBuffer buffer, long byteOffset) {
        public Offset {
            if (byteOffset < 0 || byteOffset > buffer.byteSize()) {
                throw new CudaException("offset " + byteOffset + " outside device buffer '" + buffer.name() + "' of " + buffer.byteSize() + " bytes");
            }
        }
    }

    public static Offset at(DeviceBuffer buffer, long byteOffset) { return new Offset(buffer, byteOffset); }

    static NativePointerObject pointerTo(String kernel, int index, Object a) {
        if (a instanceof DeviceBuffer b) return Pointer.to(b.pointer());
        if (a instanceof Offset o) return Pointer.to(o.buffer().pointer().withByteOffset(o.byteOffset()));
        if (a instanceof Integer i) return Pointer.to(new int[] {i});
        if (a instanceof Long l) return Pointer.to(new long[] {l});
        if (a instanceof Float f) return Pointer.to(new float[] {f});
        throw new CudaException("kernel " + kernel + " argument " + index + ": unsupported type "
                + (a == null ? "null" : a.getClass().getName()));
    }
}
