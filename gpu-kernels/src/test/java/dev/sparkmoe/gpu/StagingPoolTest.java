package dev.sparkmoe.gpu;

import dev.sparkmoe.engine.MoeEngineException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The sizing and lifetime rules of the staging pool, on fake slots (no GPU). */
class StagingPoolTest {
    static final class FakeSlot implements AutoCloseable {
        final long bytes;
        boolean closed;
        FakeSlot(long bytes) { this.bytes = bytes; }
        @Override public void close() {
            if (closed) throw new IllegalStateException("closed twice");
            closed = true;
        }
    }

    final List<FakeSlot> made = new ArrayList<>();

    StagingPool<FakeSlot> pool(int max) { return pool(max, Long.MAX_VALUE); }

    StagingPool<FakeSlot> pool(int max, long maxBytes) {
        return new StagingPool<>("test pool", max, maxBytes, new StagingPool.Allocator<>() {
            @Override public synchronized FakeSlot allocate(long bytes) {
                FakeSlot s = new FakeSlot(bytes);
                made.add(s);
                return s;
            }
            @Override public long capacity(FakeSlot s) { return s.bytes; }
        });
    }

    @Test
    void slotsAreMadeLazilySizedToTheCallAndReused() {
        StagingPool<FakeSlot> p = pool(4);
        assertEquals(0, p.slots());
        FakeSlot a = p.acquire(100);
        assertEquals(100, a.bytes);
        p.release(a);
        assertSame(a, p.acquire(60), "a large enough idle slot is reused");
        FakeSlot b = p.acquire(60); // a is in use: a second slot
        assertEquals(2, p.slots());
        p.release(a);
        p.release(b);
        assertSame(b, p.acquire(50), "the smallest idle slot that fits is taken");
        assertSame(a, p.acquire(80));
        p.release(a);
        p.release(b);
        p.close();
        assertTrue(a.closed && b.closed);
    }

    @Test
    void atTheLimitATooSmallIdleSlotIsReplaced() {
        StagingPool<FakeSlot> p = pool(1);
        FakeSlot a = p.acquire(10);
        p.release(a);
        FakeSlot b = p.acquire(1000);
        assertTrue(a.closed, "the small slot is closed when replaced");
        assertEquals(1000, b.bytes);
        assertEquals(1, p.slots());
        p.release(b);
        p.close();
        assertTrue(b.closed);
    }

    @Test
    void callersBeyondTheLimitWaitForASlot() throws Exception {
        StagingPool<FakeSlot> p = pool(2);
        FakeSlot a = p.acquire(8), b = p.acquire(8);
        ExecutorService ex = Executors.newSingleThreadExecutor();
        try {
            CountDownLatch started = new CountDownLatch(1);
            Future<FakeSlot> third = ex.submit(() -> {
                started.countDown();
                return p.acquire(8);
            });
            started.await();
            Thread.sleep(100);
            assertFalse(third.isDone(), "a third caller must wait while both slots are in use");
            p.release(a);
            assertSame(a, third.get(5, TimeUnit.SECONDS));
            assertEquals(2, p.slots());
            p.release(a);
            p.release(b);
        } finally {
            ex.shutdownNow();
        }
        p.close();
    }

    @Test
    void theByteBudgetFreesIdleSlotsLargestFirstAndElseMakesCallersWait() throws Exception {
        StagingPool<FakeSlot> p = pool(8, 100);
        FakeSlot a = p.acquire(40), b = p.acquire(30), c = p.acquire(20);
        assertEquals(90, p.bytes());
        p.release(a);
        p.release(b);
        FakeSlot d = p.acquire(50); // no idle slot fits: 90 + 50 > 100, so the largest idle (a, 40) goes: 50 + 50 <= 100
        assertTrue(a.closed && !b.closed, "the largest idle slot is freed first, and only as many as needed");
        assertEquals(100, p.bytes());
        ExecutorService ex = Executors.newSingleThreadExecutor();
        try {
            Future<FakeSlot> e = ex.submit(() -> p.acquire(60)); // needs c or d back (b idle is not enough)
            Thread.sleep(100);
            assertFalse(e.isDone(), "over the budget with every other slot busy: the caller waits");
            p.release(d);
            FakeSlot got = e.get(5, TimeUnit.SECONDS);
            assertEquals(60, got.bytes);
            assertTrue(d.closed && b.closed, "both idle slots were freed to fit 60 beside the busy 20");
            assertEquals(80, p.bytes());
            p.release(got);
        } finally {
            ex.shutdownNow();
        }
        p.release(c);
        FakeSlot huge = null;
        p.close();
        StagingPool<FakeSlot> q = pool(2, 10);
        huge = q.acquire(1000); // alone, a call gets a slot of any size
        assertEquals(1000, huge.bytes);
        q.release(huge);
        q.close();
    }

    @Test
    void closeClosesIdleSlotsNowAndBusyOnesOnRelease() {
        StagingPool<FakeSlot> p = pool(3);
        FakeSlot busy = p.acquire(8), idle = p.acquire(8);
        p.release(idle);
        Thread releaser = new Thread(() -> {
            try { Thread.sleep(100); } catch (InterruptedException ignored) { }
            p.release(busy);
        });
        releaser.start();
        p.close(); // waits for the busy slot
        assertTrue(idle.closed && busy.closed);
        assertEquals(0, p.slots());
        assertThrows(MoeEngineException.class, () -> p.acquire(8), "acquire after close");
        assertThrows(MoeEngineException.class, p::close, "second close");
    }

    @Test
    void badSizesAndLimitsAreRejected() {
        assertThrows(MoeEngineException.class, () -> pool(0));
        assertThrows(MoeEngineException.class, () -> pool(1, 0));
        StagingPool<FakeSlot> p = pool(1);
        assertThrows(MoeEngineException.class, () -> p.acquire(0));
        p.close();
    }

    @Test
    void aFailedAllocationFreesItsPlace() {
        StagingPool<FakeSlot> p = new StagingPool<>("failing pool", 1, 100, new StagingPool.Allocator<>() {
            int calls;
            @Override public FakeSlot allocate(long bytes) {
                if (calls++ == 0) throw new MoeEngineException("out of pinned memory");
                return new FakeSlot(bytes);
            }
            @Override public long capacity(FakeSlot s) { return s.bytes; }
        });
        assertThrows(MoeEngineException.class, () -> p.acquire(8));
        assertEquals(0, p.slots());
        FakeSlot s = p.acquire(8); // would wait forever if the failed allocation had kept its place
        p.release(s);
        p.close();
    }
}
