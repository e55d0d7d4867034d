package dev.sparkmoe.gpu;

import dev.sparkmoe.engine.MoeEngineException;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Closing several owned parts at once: each is closed even when an earlier one failed; nothing is lost silently. */
final class Closeables {
    private Closeables() {}

    /**
     * Closes {@code parts} in order; returns {@code failure}, or the first failure when it is null, with every later one
     * suppressed in it (checked exceptions wrapped in a {@link MoeEngineException}).
     */
    static RuntimeException closeEach(Iterable<? extends AutoCloseable> parts, RuntimeException failure) {
        for (AutoCloseable p : parts) {
            try {
                p.close();
            } catch (Exception e) {
                if (failure == null) failure = e instanceof RuntimeException r ? r : new MoeEngineException(e.getMessage(), e);
                else failure.addSuppressed(e);
            }
        }
        return failure;
    }

    /** Closes {@code parts} in order and throws the first failure, the others suppressed in it. */
    static void closeAll(Iterable<? extends AutoCloseable> parts) {
        RuntimeException failure = closeEach(parts, null);
        if (failure != null) throw failure;
    }

    /** Closes {@code parts} last first (the reverse of their making) and throws the first failure, the others suppressed. */
    static void closeAllReversed(List<? extends AutoCloseable> parts) {
        List<AutoCloseable> reversed = new ArrayList<>(parts);
        Collections.reverse(reversed);
        closeAll(reversed);
    }

    /** Adds {@code x} to the parts {@code made} so far (to be closed if construction fails) and returns it. */
    static <T extends AutoCloseable> T add(List<? super T> made, T x) {
        made.add(x);
        return x;
    }

    /** After a failed construction: closes what was {@code made}, last first, adding close failures to {@code primary}. */
    static void closeAfter(List<? extends AutoCloseable> made, RuntimeException primary) {
        for (int i = made.size() - 1; i >= 0; i--) {
            try { made.get(i).close(); } catch (Exception x) { primary.addSuppressed(x); }
        }
    }
}
