package dev.sparkmoe.cuda;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A CUDA handle with exactly one owner: {@link #close()} releases it once; a second close throws, and so does any use
 * after close. Every live handle is registered with {@link LeakTracker}, which logs (and lets tests fail on) handles
 * that are never closed.
 */
public abstract class CudaResource implements AutoCloseable {
    private final AtomicBoolean closed = new AtomicBoolean();
    private final LeakTracker.Registration registration;

    protected CudaResource(String kind, String description) {
        this.registration = LeakTracker.register(this, kind, description);
    }

    /** The tracker's id of this handle, as leak reports print it. */
    public final long id() { return registration.id(); }

    public final boolean isClosed() { return closed.get(); }

    /** Throws when this handle was already closed. */
    protected final void requireOpen() {
        if (closed.get()) throw new CudaException(registration.label() + " was used after close");
    }

    @Override
    public final void close() {
        if (!closed.compareAndSet(false, true)) throw new CudaException(registration.label() + " was closed twice");
        try {
            release();
        } finally {
            registration.closed();
        }
    }

    /** Frees the native handle; called once. */
    protected abstract void release();

    @Override
    public String toString() { return registration.label(); }
}
