package dev.sparkmoe.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** Runs everywhere: the reason the driver cannot be used (if any) is one line, and native loader dumps are cut. */
class CudaAvailabilityTest {
    @Test
    void reasonIsOneLine() {
        Cuda.unavailableReason().ifPresent(why -> assertFalse(why.contains("\n"), why));
        assertEquals("no library found", Cuda.firstLine("no library found\nOperating system name: Linux\n..."));
        assertEquals("(no message)", Cuda.firstLine(null));
    }
}
