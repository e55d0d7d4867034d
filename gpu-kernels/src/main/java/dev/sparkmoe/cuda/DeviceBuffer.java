package dev.sparkmoe.cuda;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

import java.nio.ByteBuffer;

/**
 * Device memory holding {@code count} elements of {@code elementBytes} each. Copies check their sizes against the
 * buffer's (a short or long host array is an error naming the buffer, never a partial copy).
 */
public final class DeviceBuffer extends CudaResource {
    private final CudaContext context;
    private final CUdeviceptr ptr;
    private final long count;
    private final int elementBytes;
    private final String name;

    /** Allocates {@code count} elements of {@code elementBytes} (contents undefined). */
    public DeviceBuffer(CudaContext context, String name, long count, int elementBytes) {
        super("DeviceBuffer", name + " [" + count + " x " + elementBytes + " B]");
        if (count < 0 || elementBytes <= 0) throw new CudaException("device buffer '" + name + "': bad size " + count + " x " + elementBytes);
        this.context = context;
        this.name = name;
        this.count = count;
        this.elementBytes = elementBytes;
        this.ptr = new CUdeviceptr();
        context.makeCurrent();
        long bytes = Math.max(1, Math.multiplyExact(count, (long) elementBytes));
        int r = JCudaDriver.cuMemAlloc(ptr, bytes);
        if (r != 0) {
            closeQuietlyAfterFailedAlloc();
            Cuda.check(r, "cuMemAlloc(" + bytes + " bytes for '" + name + "')");
        }
    }

    private void closeQuietlyAfterFailedAlloc() {
        try { close(); } catch (RuntimeException ignored) { /* cuMemFree of a null pointer: nothing to free */ }
    }

    public static DeviceBuffer floats(CudaContext c, String name, long n) { return new DeviceBuffer(c, name, n, 4); }
    public static DeviceBuffer ints(CudaContext c, String name, long n) { return new DeviceBuffer(c, name, n, 4); }
    public static DeviceBuffer bytes(CudaContext c, String name, long n) { return new DeviceBuffer(c, name, n, 1); }
    public static DeviceBuffer doubles(CudaContext c, String name, long n) { return new DeviceBuffer(c, name, n, 8); }

    public String name() { return name; }
    public long count() { return count; }
    public int elementBytes() { return elementBytes; }
    public long byteSize() { return count * elementBytes; }

    /** The device pointer, for kernel arguments. */
    CUdeviceptr pointer() {
        requireOpen();
        return ptr;
    }

    private void checkBytes(long bytes, long offsetBytes, String what) {
        if (offsetBytes < 0 || bytes < 0 || offsetBytes + bytes > byteSize()) {
            throw new CudaException(what + " of " + bytes + " bytes at offset " + offsetBytes + " does not fit device buffer '" + name
                    + "' of " + byteSize() + " bytes");
        }
    }

    /** Synchronous copy of the whole of {@code src} (remaining bytes) to the start of this buffer. */
    public void upload(ByteBuffer src) {
        checkBytes(src.remaining(), 0, "upload");
        context.makeCurrent();
        ByteBuffer b = src.isDirect() ? src.slice() : ByteBuffer.allocateDirect(src.remaining()).put(src.duplicate()).flip();
        Cuda.check(JCudaDriver.cuMemcpyHtoD(pointer(), Pointer.to(b), b.remaining()), "cuMemcpyHtoD to '" + name + "'");
    }

    /** Synchronous copy of {@code src} (its remaining bytes) into this buffer at {@code offsetBytes}. */
    public void upload(ByteBuffer src, long offsetBytes) {
        checkBytes(src.remaining(), offsetBytes, "upload");
        context.makeCurrent();
        ByteBuffer b = src.isDirect() ? src.slice() : ByteBuffer.allocateDirect(src.remaining()).put(src.duplicate()).flip();
        Cuda.check(JCudaDriver.cuMemcpyHtoD(pointer().withByteOffset(offsetBytes), Pointer.to(b), b.remaining()),
                "cuMemcpyHtoD to '" + name + "' at " + offsetBytes);
    }

    /** Asynchronous device-to-device copy of {@code bytes} from {@code src} at {@code srcOffset} to the start of this buffer. */
    public void copyFrom(DeviceBuffer src, long srcOffset, long bytes, CudaStream stream) {
        checkBytes(bytes, 0, "device copy");
        src.checkBytes(bytes, srcOffset, "device copy");
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemcpyDtoDAsync(pointer(), src.pointer().withByteOffset(srcOffset), bytes, stream.handle()),
                "cuMemcpyDtoDAsync '" + src.name + "' -> '" + name + "'");
    }

    public void upload(float[] src) { upload(src, src.length); }

    /** Synchronous copy of {@code src[0..n)} to the start of this buffer. */
    public void upload(float[] src, int n) {
        checkBytes(4L * n, 0, "upload");
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemcpyHtoD(pointer(), Pointer.to(src), 4L * n), "cuMemcpyHtoD to '" + name + "'");
    }

    public void upload(int[] src) {
        checkBytes(4L * src.length, 0, "upload");
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemcpyHtoD(pointer(), Pointer.to(src), 4L * src.length), "cuMemcpyHtoD to '" + name + "'");
    }

    /** Synchronous copy of the first {@code dst.length} floats of this buffer. */
    public void download(float[] dst) {
        checkBytes(4L * dst.length, 0, "download");
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(dst), pointer(), 4L * dst.length), "cuMemcpyDtoH from '" + name + "'");
    }

    public void download(int[] dst) {
        checkBytes(4L * dst.length, 0, "download");
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(dst), pointer(), 4L * dst.length), "cuMemcpyDtoH from '" + name + "'");
    }

    /** Synchronous copy into {@code dst} (direct; its remaining bytes) from the start of this buffer. */
    public void download(ByteBuffer dst) {
        if (!dst.isDirect()) throw new CudaException("download from '" + name + "' needs a direct ByteBuffer");
        checkBytes(dst.remaining(), 0, "download");
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(dst.slice()), pointer(), dst.remaining()), "cuMemcpyDtoH from '" + name + "'");
    }

    /** Asynchronous copy of {@code bytes} from pinned host memory to this buffer at {@code offsetBytes}. */
    public void uploadAsync(PinnedBuffer src, long bytes, long offsetBytes, CudaStream stream) {
        checkBytes(bytes, offsetBytes, "async upload");
        if (bytes > src.byteSize()) throw new CudaException("async upload of " + bytes + " bytes from a pinned buffer of " + src.byteSize());
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemcpyHtoDAsync(pointer().withByteOffset(offsetBytes), src.pointer(), bytes, stream.handle()),
                "cuMemcpyHtoDAsync to '" + name + "'");
    }

    /** Asynchronous copy of {@code bytes} from the start of this buffer to pinned host memory. */
    public void downloadAsync(PinnedBuffer dst, long bytes, CudaStream stream) {
        checkBytes(bytes, 0, "async download");
        if (bytes > dst.byteSize()) throw new CudaException("async download of " + bytes + " bytes into a pinned buffer of " + dst.byteSize());
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemcpyDtoHAsync(dst.pointer(), pointer(), bytes, stream.handle()), "cuMemcpyDtoHAsync from '" + name + "'");
    }

    /** Sets every byte to {@code value} (asynchronously on {@code stream}). */
    public void memset(byte value, CudaStream stream) {
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemsetD8Async(pointer(), value, byteSize(), stream.handle()), "cuMemsetD8Async on '" + name + "'");
    }

    /** Sets every 32-bit word to {@code bits} (e.g. {@code Float.floatToRawIntBits(NaN)} to poison); size must be a multiple of 4. */
    public void memset32(int bits, CudaStream stream) {
        if (byteSize() % 4 != 0) throw new CudaException("memset32 on '" + name + "' of " + byteSize() + " bytes (not a multiple of 4)");
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemsetD32Async(pointer(), bits, byteSize() / 4, stream.handle()), "cuMemsetD32Async on '" + name + "'");
    }

    @Override
    protected void release() {
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemFree(ptr), "cuMemFree('" + name + "')");
    }
}
