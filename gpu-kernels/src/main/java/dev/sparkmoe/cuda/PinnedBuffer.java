package dev.sparkmoe.cuda;

import jcuda.Pointer;
import jcuda.driver.JCudaDriver;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Page-locked host memory, for asynchronous copies (and copies inside a graph's stream order). */
public final class PinnedBuffer extends CudaResource {
    private final CudaContext context;
    private final Pointer ptr;
    private final long bytes;
    private final ByteBuffer view;

    public PinnedBuffer(CudaContext context, String name, long bytes) {
        super("PinnedBuffer", name + " [" + bytes + " B]");
        if (bytes <= 0 || bytes > Integer.MAX_VALUE) throw new CudaException("pinned buffer '" + name + "': bad size " + bytes);
        this.context = context;
        this.bytes = bytes;
        this.ptr = new Pointer();
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemAllocHost(ptr, bytes), "cuMemAllocHost(" + bytes + " bytes for '" + name + "')");
        this.view = ptr.getByteBuffer(0, bytes).order(ByteOrder.nativeOrder());
    }

    Pointer pointer() {
        requireOpen();
        return ptr;
    }

    public long byteSize() { return bytes; }

    /** A native-order view of the whole buffer (position 0, limit = size); valid until close. */
    public ByteBuffer buffer() {
        requireOpen();
        return view.duplicate().order(ByteOrder.nativeOrder());
    }

    @Override
    protected void release() {
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuMemFreeHost(ptr), "cuMemFreeHost");
    }
}
