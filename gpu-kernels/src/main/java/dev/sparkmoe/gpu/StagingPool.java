package dev.sparkmoe.gpu;

import dev.sparkmoe.engine.MoeEngineException;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A small pool of per-call staging slots (pinned host buffers): a caller takes one for the duration of its call and
 * gives it back. Slots are made lazily, sized to the call that needed them, and reused: an idle slot that is large enough
 * is taken (the smallest such), otherwise a new one is made while fewer than {@code maxSlots} exist, otherwise an idle
 * slot that is too small is replaced by a larger one, otherwise the caller waits for a slot to come back.
 * {@link #close()} closes the idle slots and waits (bounded) for those in use; a slot given back after close is closed.
 * Thread-safe. Generic over the slot so that the sizing rules are tested without a GPU.
 */
final class StagingPool<S extends AutoCloseable> implements AutoCloseable {
    /** Makes and measures slots. */
    interface Allocator<S> {
        /** A new slot of at least {@code bytes} capacity. */
        S allocate(long bytes);

        long capacity(S slot);
    }

    /** How long close() waits for slots still in use before it reports them. */
    static final long CLOSE_WAIT_MS = 60_000;

    private final String name;
    private final Allocator<S> allocator;
    private final int maxSlots;
    private final List<S> idle = new ArrayList<>();
    private int existing;   // idle + in use + being allocated
    private boolean closed;

    StagingPool(String name, int maxSlots, Allocator<S> allocator) {
        if (maxSlots < 1) throw new MoeEngineException(name + ": the pool needs at least 1 slot, got " + maxSlots);
        this.name = name;
        this.maxSlots = maxSlots;
        this.allocator = allocator;
    }

    /** A slot of at least {@code bytes}, waiting while all {@code maxSlots} are in use. */
    S acquire(long bytes) {
        if (bytes <= 0) throw new MoeEngineException(name + ": a staging slot of " + bytes + " bytes was asked for");
        S retired = null;
        synchronized (this) {
            while (true) {
                if (closed) throw new MoeEngineException(name + " is closed");
                S best = null;
                for (S s : idle) {
                    long c = allocator.capacity(s);
                    if (c >= bytes && (best == null || c < allocator.capacity(best))) best = s;
                }
                if (best != null) {
                    idle.remove(best);
                    return best;
                }
                if (existing < maxSlots) break;
                if (!idle.isEmpty()) { // every idle slot is too small: retire the largest, make a big enough one
                    retired = idle.get(0);
                    for (S s : idle) if (allocator.capacity(s) > allocator.capacity(retired)) retired = s;
                    idle.remove(retired);
                    break;
                }
                try {
                    wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new MoeEngineException(name + ": interrupted while waiting for a staging slot", e);
                }
            }
            if (retired == null) existing++;
        }
        // allocation (and closing a retired slot) outside the monitor: pinned allocations take milliseconds
        try {
            if (retired != null) closeSlot(retired);
            return allocator.allocate(bytes);
        } catch (RuntimeException e) {
            synchronized (this) {
                existing--;
                notifyAll();
            }
            throw e;
        }
    }

    /** Gives back a slot taken by {@link #acquire}. */
    void release(S slot) {
        boolean close;
        synchronized (this) {
            close = closed;
            if (close) existing--;
            else idle.add(slot);
            notifyAll();
        }
        if (close) closeSlot(slot);
    }

    /** Slots made and not closed (idle or in use). */
    synchronized int slots() { return existing; }

    synchronized int idleSlots() { return idle.size(); }

    /** Total capacity of the idle slots. */
    synchronized long idleBytes() {
        long n = 0;
        for (S s : idle) n += allocator.capacity(s);
        return n;
    }

    private void closeSlot(S s) {
        try {
            s.close();
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new MoeEngineException(name + ": closing a staging slot failed: " + e.getMessage(), e);
        }
    }

    /**
     * Closes the idle slots now and waits up to {@link #CLOSE_WAIT_MS} for the slots in use (their callers close them on
     * release). Throws when closed twice or when slots are still in use after the wait.
     */
    @Override
    public void close() {
        List<S> toClose;
        synchronized (this) {
            if (closed) throw new MoeEngineException(name + " was closed twice");
            closed = true;
            toClose = new ArrayList<>(idle);
            existing -= idle.size();
            idle.clear();
            notifyAll();
        }
        RuntimeException failure = null;
        for (S s : toClose) {
            try { closeSlot(s); } catch (RuntimeException e) { if (failure == null) failure = e; else failure.addSuppressed(e); }
        }
        synchronized (this) {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(CLOSE_WAIT_MS);
            boolean interrupted = false;
            while (existing > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) break;
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    interrupted = true;
                    break;
                }
            }
            if (interrupted) Thread.currentThread().interrupt();
            if (existing > 0) {
                MoeEngineException e = new MoeEngineException(name + ": " + existing + " staging slot(s) still in use at close");
                if (failure == null) failure = e; else failure.addSuppressed(e);
            }
        }
        if (failure != null) throw failure;
    }
}
