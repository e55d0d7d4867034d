package dev.sparkmoe.gpu;

import dev.sparkmoe.cuda.Cuda;
import dev.sparkmoe.cuda.LeakTracker;

import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Shared guards of the GPU tests: skip with a printed reason without a usable GPU; fail on leaked CUDA handles. */
public final class GpuTestSupport {
    private GpuTestSupport() {}

    /** Skips the calling test class (with the reason printed) unless the GPU engine can run here. */
    public static void requireGpu() {
        Optional<String> why = GpuMoeEngine.unavailableReason();
        why.ifPresent(r -> System.out.println("[gpu tests] skipped: " + r));
        assumeTrue(why.isEmpty(), () -> "no usable GPU: " + why.orElse(""));
        Cuda.setSyncCheck(true); // a fault is reported at the kernel that caused it
    }

    /** Fails when any CUDA handle is still open or was leaked (garbage collected without close). */
    public static void assertNoLeaks(long leakedBefore) {
        assertEquals(java.util.List.of(), LeakTracker.live(), "CUDA handles still open");
        assertEquals(leakedBefore, LeakTracker.leakedCount(), "CUDA handles leaked (see the log for their ids)");
    }
}
