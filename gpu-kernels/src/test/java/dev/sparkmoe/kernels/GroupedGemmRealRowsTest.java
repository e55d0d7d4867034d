package dev.sparkmoe.kernels;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparkmoe.kernels.GroupedGemm.RealRows;
import org.junit.jupiter.api.Test;

/** The padding-skip arguments of the grouped GEMM launcher (no GPU needed: only what is checked before a launch). */
class GroupedGemmRealRowsTest {

    @Test
    void allPassesNullPointersSoEveryRowIsComputed() {
        assertNull(RealRows.ALL.expertCount());
        assertNull(RealRows.ALL.expertStart());
        assertTrue(RealRows.ALL.countArg() instanceof Long l && l == 0L, "a null device pointer");
        assertTrue(RealRows.ALL.startArg() instanceof Long l && l == 0L, "a null device pointer");
    }

    @Test
    void missingBuffersAreRejectedWithTheirName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RealRows.ofExperts(null, null));
        assertTrue(e.getMessage().contains("expert count"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RealRows.singleGroup(null));
        assertTrue(e.getMessage().contains("row count"), e.getMessage());
    }

    @Test
    void bf16OutputIsRefusedWithTheReferenceGemms() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new GroupedGemm(null, 132, true, 128, true));
        assertTrue(e.getMessage().contains("reference") && e.getMessage().contains("bf16"), e.getMessage());
    }
}
