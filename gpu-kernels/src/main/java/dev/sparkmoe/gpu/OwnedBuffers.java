package dev.sparkmoe.gpu;

import dev.sparkmoe.cuda.CudaContext;
import dev.sparkmoe.cuda.DeviceBuffer;

import java.util.ArrayList;
import java.util.List;

/**
 * The device buffers a workspace or the weights allocate and own ({@link LayerWorkspace}, {@link DecodeWorkspace},
 * {@link DeviceWeights}): made through
 * {@link #buffer}, closed together in reverse order - after a failed construction with the failure as the primary
 * exception, or by the owner's close, which throws the first failure with the rest suppressed.
 */
final class OwnedBuffers {
    private final CudaContext ctx;
    private final List<DeviceBuffer> buffers = new ArrayList<>();

    OwnedBuffers(CudaContext ctx) { this.ctx = ctx; }

    DeviceBuffer buffer(String name, long count, int elementBytes) {
        DeviceBuffer b = new DeviceBuffer(ctx, name, count, elementBytes);
        buffers.add(b);
        return b;
    }

    /** Device bytes held. */
    long deviceBytes() {
        long n = 0;
        for (DeviceBuffer b : buffers) n += b.byteSize();
        return n;
    }

    /** Closes everything after a failed construction; close failures are added to {@code primary}. */
    void closeAfter(RuntimeException primary) {
        Closeables.closeAfter(buffers, primary);
        buffers.clear();
    }

    /** Closes everything, last made first; throws the first failure, the others suppressed in it. */
    void close() {
        try {
            Closeables.closeAllReversed(buffers);
        } finally {
            buffers.clear();
        }
    }
}
