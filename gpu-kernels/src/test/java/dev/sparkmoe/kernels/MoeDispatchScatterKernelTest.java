package dev.sparkmoe.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparkmoe.kernels.MoeDispatch.ScatterKernel;
import org.junit.jupiter.api.Test;

/** The values of {@code sparkmoe.gpu.scatterKernel} and the entry points they name (no GPU needed). */
class MoeDispatchScatterKernelTest {

    @Test
    void namesParseCaseInsensitivelyAndPickTheirEntryPoints() {
        assertEquals(ScatterKernel.PREFETCH, ScatterKernel.parse("prefetch"));
        assertEquals(ScatterKernel.BLOCKWISE, ScatterKernel.parse("Blockwise"));
        assertEquals("", ScatterKernel.PREFETCH.suffix);          // moe_dispatch_rows_{bf16,fp8}
        assertEquals("_blockwise", ScatterKernel.BLOCKWISE.suffix);
    }

    @Test
    void anUnknownNameIsRefusedNamingTheChoices() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ScatterKernel.parse("warp"));
        assertTrue(e.getMessage().contains("prefetch or blockwise") && e.getMessage().contains("warp"), e.getMessage());
    }
}
