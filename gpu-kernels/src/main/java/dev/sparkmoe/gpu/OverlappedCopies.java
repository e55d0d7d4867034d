package dev.sparkmoe.gpu;

import dev.sparkmoe.cuda.CudaContext;
import dev.sparkmoe.cuda.CudaEvent;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.engine.MoeEngineException;

import java.util.ArrayList;
import java.util.List;

/**
 * The transfers of {@link ForwardMode#OVERLAPPED}: an upload and a download stream that copy between a caller's pinned
 * staging and the workspace's double-buffered device staging ({@link LayerWorkspace#stagingIn} / {@code stagingOut}),
 * so one call's transfers overlap another's compute, with the events that order them against the layer's stream, by
 * ring index. Not thread-safe: the engine lock is held.
 */
final class OverlappedCopies implements AutoCloseable {
    private final CudaStream uploadStream, downloadStream;
    private final CudaEvent[] inReady, inFree, outReady, outFree;
    private int inRing, outRing;
    private boolean closed;

    OverlappedCopies(CudaContext cx) {
        List<AutoCloseable> made = new ArrayList<>();
        try {
            this.uploadStream = Closeables.add(made, new CudaStream(cx));
            this.downloadStream = Closeables.add(made, new CudaStream(cx));
            this.inReady = events(made, cx, "x staged");
            this.inFree = events(made, cx, "x staging free");
            this.outReady = events(made, cx, "out staged");
            this.outFree = events(made, cx, "out staging free");
        } catch (RuntimeException e) {
            Closeables.closeAfter(made, e);
            throw e;
        }
    }

    private static CudaEvent[] events(List<AutoCloseable> made, CudaContext cx, String what) {
        return new CudaEvent[] {Closeables.add(made, CudaEvent.forOrdering(cx, what + " 0")), Closeables.add(made, CudaEvent.forOrdering(cx, what + " 1"))};
    }

    /** Queues the upload of {@code bytes} of the slot's input into x through the next device staging buffer. */
    void upload(LayerWorkspace ws, StagingSlot slot, long bytes, CudaStream stream) {
        int i = inRing;
        inRing ^= 1;
        uploadStream.waitFor(inFree[i]);              // the layer has copied this staging buffer's previous contents
        ws.stagingIn[i].uploadAsync(slot.in, bytes, 0, uploadStream);
        inReady[i].record(uploadStream);
        stream.waitFor(inReady[i]);
        ws.x.copyFrom(ws.stagingIn[i], 0, bytes, stream);
        inFree[i].record(stream);
    }

    /** Queues the download of {@code bytes} of out into the slot's output through the next device staging buffer, then the slot's event. */
    void download(LayerWorkspace ws, StagingSlot slot, long bytes, CudaStream stream) {
        int i = outRing;
        outRing ^= 1;
        stream.waitFor(outFree[i]);                   // this staging buffer's previous download is done
        ws.stagingOut[i].copyFrom(ws.out, 0, bytes, stream);
        outReady[i].record(stream);
        downloadStream.waitFor(outReady[i]);
        ws.stagingOut[i].downloadAsync(slot.out, bytes, downloadStream);
        outFree[i].record(downloadStream);
        slot.done.record(downloadStream);
    }

    /** Waits for both copy streams. */
    void synchronize(String what) {
        uploadStream.synchronize(what);
        downloadStream.synchronize(what);
    }

    /** Closes the events, then the streams; the first failure is thrown, the others suppressed in it. A second close throws. */
    @Override
    public void close() {
        if (closed) throw new MoeEngineException("the copy streams of a GPU engine were closed twice");
        closed = true;
        List<AutoCloseable> parts = new ArrayList<>();
        for (CudaEvent[] es : new CudaEvent[][] {inReady, inFree, outReady, outFree}) parts.addAll(List.of(es));
        parts.add(uploadStream);
        parts.add(downloadStream);
        Closeables.closeAll(parts);
    }
}
