package dev.sparkmoe.gpu;

import dev.sparkmoe.engine.MoeEngineException;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A small pool of per-call staging slots (pinned host buffers): a caller takes one for the duration of its call and
 * gives it back. Slots are made lazily, sized to the call that needed them, and reused: an idle slot that is large enough
 * is taken (the smallest such); otherwise a new one is made if fewer than {@code maxSlots} exist and the slots' total
 * stays within {@code maxBytes}, idle slots being closed (largest first) to make room; otherwise the caller waits for a
 * slot to come back. A call always gets a slot when no other slot exists, however large.
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
    private final long maxBytes;
    private final List<S> idle = new ArrayList<>();
    private int existing;   // idle + in use + being allocated
    private long bytes;     // capacity of those
    private boolean closed;

    StagingPool(String name, int maxSlots, long maxBytes, Allocator<S> allocator) {
        if (maxSlots < 1) throw new MoeEngineException(name + ": the pool needs at least 1 slot, got " + maxSlots);
        if (maxBytes < 1) throw new MoeEngineException(name + ": the pool needs a positive byte budget, got " + maxBytes);
        this.name = name;
        this.maxSlots = maxSlots;
        this.maxBytes = maxBytes;
        this.allocator = allocator;
    }

    /** A slot of at least {@code need} bytes, waiting while the slot count or byte budget leaves no room. */
    S acquire(long need) {
        if (need <= 0) throw new MoeEngineException(name + ": a staging slot of " + need + " bytes was asked for");
        List<S> retired = new ArrayList<>();
        synchronized (this) {
            while (true) {
                if (closed) throw new MoeEngineException(name + " is closed");
                S best = null;
                for (S s : idle) {
                    long c = allocator.capacity(s);
                    if (c >= need && (best == null || c < allocator.capacity(best))) best = s;
                }
                if (best != null) {
                    idle.remove(best);
                    return best;
                }
                // room for a new slot, after closing idle ones (largest first) if needed?
                int slotsLeft = existing;
                long bytesLeft = bytes;
                List<S> byCapacity = new ArrayList<>(idle);
                byCapacity.sort((a, b) -> Long.compare(allocator.capacity(b), allocator.capacity(a)));
                int retire = 0;
                while (!fits(slotsLeft, bytesLeft, need) && retire < byCapacity.size()) {
                    bytesLeft -= allocator.capacity(byCapacity.get(retire++));
                    slotsLeft--;
                }
                if (fits(slotsLeft, bytesLeft, need)) {
                    for (int i = 0; i < retire; i++) {
                        idle.remove(byCapacity.get(i));
                        retired.add(byCapacity.get(i));
                    }
                    existing = slotsLeft + 1;
                    bytes = bytesLeft + need;
                    break;
                }
                try {
                    wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new MoeEngineException(name + ": interrupted while waiting for a staging slot", e);
                }
            }
        }
        // allocation (and closing retired slots) outside the monitor: pinned allocations take milliseconds
        try {
            for (S r : retired) closeSlot(r);
            S made = allocator.allocate(need);
            long extra = allocator.capacity(made) - need;
            if (extra != 0) synchronized (this) { bytes += extra; }
            return made;
        } catch (RuntimeException e) {
            synchronized (this) {
                existing--;
                bytes -= need;
                notifyAll();
            }
            throw e;
        }
    }

    private boolean fits(int slots, long slotBytes, long need) {
        return slots == 0 || (slots < maxSlots && slotBytes + need <= maxBytes);
    }

    /** Gives back a slot taken by {@link #acquire}; after {@link #close()} it is closed (before close() may return). */
    void release(S slot) {
        synchronized (this) {
            if (!closed) {
                idle.add(slot);
                notifyAll();
                return;
            }
        }
        long capacity = allocator.capacity(slot);
        try {
            closeSlot(slot);
        } finally {
            synchronized (this) {
                existing--;
                bytes -= capacity;
                notifyAll();
            }
        }
    }

    /** Slots made and not closed (idle or in use). */
    synchronized int slots() { return existing; }

    /** Total capacity of the slots made and not closed. */
    synchronized long bytes() { return bytes; }

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
            for (S s : idle) bytes -= allocator.capacity(s);
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
