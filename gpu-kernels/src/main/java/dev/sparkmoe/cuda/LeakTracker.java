package dev.sparkmoe.cuda;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Every live CUDA handle, with an id: a handle that becomes unreachable without {@code close()} is logged as leaked
 * (naming its id, kind and where it was created), and {@link #live()} lets tests assert that nothing is left open.
 */
public final class LeakTracker {
    private static final Logger LOG = LoggerFactory.getLogger(LeakTracker.class);
    private static final Cleaner CLEANER = Cleaner.create();
    private static final AtomicLong NEXT_ID = new AtomicLong(1);
    private static final Map<Long, Registration> LIVE = new ConcurrentHashMap<>();
    private static final AtomicLong LEAKED = new AtomicLong();

    private LeakTracker() {}

    /** A registered handle; {@link #closed()} on close. */
    public static final class Registration implements Runnable {
        private final long id;
        private final String kind;
        private final String description;
        private final Throwable origin;
        private volatile boolean closed;
        private Cleaner.Cleanable cleanable;

        private Registration(long id, String kind, String description) {
            this.id = id;
            this.kind = kind;
            this.description = description;
            this.origin = new Throwable("created here");
        }

        public long id() { return id; }

        public String label() { return kind + " #" + id + " (" + description + ")"; }

        void closed() {
            closed = true;
            LIVE.remove(id);
            cleanable.clean(); // runs run() now, which sees closed == true
        }

        /** Called by the cleaner when the handle became unreachable, or by closed(). */
        @Override
        public void run() {
            if (!closed) {
                LIVE.remove(id);
                LEAKED.incrementAndGet();
                LOG.error("leaked CUDA handle {}: never closed", label(), origin);
            }
        }
    }

    static Registration register(Object handle, String kind, String description) {
        Registration r = new Registration(NEXT_ID.getAndIncrement(), kind, description);
        LIVE.put(r.id, r);
        r.cleanable = CLEANER.register(handle, r);
        return r;
    }

    /** Labels of the handles open now, oldest first. */
    public static List<String> live() {
        List<Registration> rs = new ArrayList<>(LIVE.values());
        rs.sort((a, b) -> Long.compare(a.id, b.id));
        List<String> out = new ArrayList<>();
        for (Registration r : rs) out.add(r.label());
        return out;
    }

    /** How many handles were found unreachable without close since the process started. */
    public static long leakedCount() { return LEAKED.get(); }
}
