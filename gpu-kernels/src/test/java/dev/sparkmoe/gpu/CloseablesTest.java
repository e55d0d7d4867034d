package dev.sparkmoe.gpu;

import dev.sparkmoe.engine.MoeEngineException;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

class CloseablesTest {
    private final List<String> closed = new ArrayList<>();

    private AutoCloseable part(String name, Exception failure) {
        return () -> {
            closed.add(name);
            if (failure != null) throw failure;
        };
    }

    @Test
    void closesEveryPartInOrderAndKeepsEveryFailure() {
        IllegalStateException first = new IllegalStateException("b failed");
        IOException checked = new IOException("d failed");
        List<AutoCloseable> parts = List.of(part("a", null), part("b", first), part("c", null), part("d", checked));
        RuntimeException e = assertThrows(RuntimeException.class, () -> Closeables.closeAll(parts));
        assertSame(first, e);
        assertArrayEquals(new Throwable[] {checked}, e.getSuppressed());
        assertEquals(List.of("a", "b", "c", "d"), closed);
    }

    @Test
    void anEarlierFailureStaysThePrimaryOne() {
        RuntimeException earlier = new RuntimeException("earlier");
        IllegalStateException later = new IllegalStateException("later");
        assertSame(earlier, Closeables.closeEach(List.of(part("a", later)), earlier));
        assertArrayEquals(new Throwable[] {later}, earlier.getSuppressed());
        assertNull(Closeables.closeEach(List.of(part("b", null)), null));
        // a checked exception alone becomes the engine's exception type
        RuntimeException wrapped = Closeables.closeEach(List.of(part("c", new IOException("io"))), null);
        assertInstanceOf(MoeEngineException.class, wrapped);
        assertInstanceOf(IOException.class, wrapped.getCause());
    }

    @Test
    void afterAFailedConstructionTheLastMadeClosesFirst() {
        RuntimeException primary = new RuntimeException("construction failed");
        List<AutoCloseable> made = new ArrayList<>();
        Closeables.add(made, part("first", null));
        Closeables.add(made, part("second", new IllegalStateException("second failed")));
        Closeables.add(made, part("third", null));
        Closeables.closeAfter(made, primary);
        assertEquals(List.of("third", "second", "first"), closed);
        assertEquals(1, primary.getSuppressed().length);
    }

    @Test
    void closingInReverseStillClosesEveryPartAndThrowsTheFirstFailure() {
        IllegalStateException c = new IllegalStateException("c failed"), a = new IllegalStateException("a failed");
        List<AutoCloseable> parts = List.of(part("a", a), part("b", null), part("c", c));
        RuntimeException e = assertThrows(RuntimeException.class, () -> Closeables.closeAllReversed(parts));
        assertSame(c, e);
        assertArrayEquals(new Throwable[] {a}, e.getSuppressed());
        assertEquals(List.of("c", "b", "a"), closed);
    }
}
