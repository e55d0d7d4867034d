package dev.sparkmoe.gpu;

import dev.sparkmoe.cuda.Cuda;
import dev.sparkmoe.cuda.LeakTracker;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The guards of every {@link GpuTest} class (its JUnit extension): before the class, skip it (with the reason
 * printed) unless the GPU engine can run here and note the leak count; after it, fail on CUDA handles still open or
 * leaked (garbage collected without close) meanwhile.
 */
public final class GpuTestSupport implements BeforeAllCallback, AfterAllCallback {
    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(GpuTestSupport.class);
    private static final String LEAKED_BEFORE = "leakedBefore";

    @Override
    public void beforeAll(ExtensionContext context) {
        requireGpu();
        context.getStore(NAMESPACE).put(LEAKED_BEFORE, LeakTracker.leakedCount());
    }

    @Override
    public void afterAll(ExtensionContext context) {
        Long leakedBefore = context.getStore(NAMESPACE).get(LEAKED_BEFORE, Long.class);
        if (leakedBefore != null) assertNoLeaks(leakedBefore); // absent when the class was skipped
    }

    /** Skips the calling test (with the reason printed) unless the GPU engine can run here. */
    public static void requireGpu() {
        Optional<String> why = GpuMoeEngine.unavailableReason();
        why.ifPresent(r -> System.out.println("[gpu tests] skipped: " + r));
        assumeTrue(why.isEmpty(), () -> "no usable GPU: " + why.orElse(""));
        Cuda.setSyncCheck(true); // a fault is reported at the kernel that caused it
    }

    /** Fails when any CUDA handle is still open or more were leaked than {@code leakedBefore}. */
    public static void assertNoLeaks(long leakedBefore) {
        assertEquals(List.of(), LeakTracker.live(), "CUDA handles still open");
        assertEquals(leakedBefore, LeakTracker.leakedCount(), "CUDA handles leaked (see the log for their ids)");
    }
}
