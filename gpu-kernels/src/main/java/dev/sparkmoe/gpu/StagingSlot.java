package dev.sparkmoe.gpu;

import dev.sparkmoe.cuda.CudaContext;
import dev.sparkmoe.cuda.CudaEvent;
import dev.sparkmoe.cuda.PinnedBuffer;

import java.util.List;

/**
 * One caller's pinned staging for a GPU call: the input copied in by the caller's thread, the output copied back by the
 * GPU, and the event the caller waits on (recorded after the download). Taken from a {@link StagingPool} for one call.
 */
final class StagingSlot implements AutoCloseable {
    final PinnedBuffer in;
    final PinnedBuffer out;
    final CudaEvent done;

    StagingSlot(CudaContext ctx, long bytes) {
        PinnedBuffer i = null, o = null;
        CudaEvent d;
        try {
            i = new PinnedBuffer(ctx, "staging in", bytes);
            o = new PinnedBuffer(ctx, "staging out", bytes);
            d = CudaEvent.forOrdering(ctx, "staging done");
        } catch (RuntimeException e) {
            if (o != null) o.close();
            if (i != null) i.close();
            throw e;
        }
        in = i;
        out = o;
        done = d;
    }

    long capacity() { return in.byteSize(); }

    /** Copies {@code n} floats of {@code src} from {@code offset} into the input buffer (the caller's thread, no lock). */
    void copyIn(float[] src, int offset, int n) {
        in.buffer().asFloatBuffer().put(src, offset, n);
    }

    /** Waits for the download, then copies {@code n} floats of the output buffer into {@code dst} at {@code offset}. */
    void awaitAndCopyOut(String what, float[] dst, int offset, int n) {
        done.synchronize(what);
        out.buffer().asFloatBuffer().get(dst, offset, n);
    }

    @Override
    public void close() { Closeables.closeAll(List.of(done, out, in)); }
}
