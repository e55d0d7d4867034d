package dev.sparkmoe.gpu;

import dev.sparkmoe.engine.MoeEngineException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Parsing of sparkmoe.gpu.forwardMode and its declared default (no GPU needed). */
class ForwardModeTest {
    @Test
    void parsesTheThreeModesAndNamesTheSettingOnError() {
        assertEquals(ForwardMode.SERIAL, ForwardMode.parse("serial"));
        assertEquals(ForwardMode.PIPELINED, ForwardMode.parse("Pipelined"));
        assertEquals(ForwardMode.OVERLAPPED, ForwardMode.parse("OVERLAPPED"));
        MoeEngineException e = assertThrows(MoeEngineException.class, () -> ForwardMode.parse("async"));
        assertTrue(e.getMessage().contains(GpuEngineSettings.FORWARD_MODE.key()) && e.getMessage().contains("async"), e.getMessage());
        assertEquals(ForwardMode.PIPELINED, ForwardMode.parse(GpuEngineSettings.FORWARD_MODE.defaultValue()));
    }
}
