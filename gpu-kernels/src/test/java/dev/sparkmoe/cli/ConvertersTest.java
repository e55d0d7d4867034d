package dev.sparkmoe.cli;

import dev.sparkmoe.checkpoint.CheckpointException;
import dev.sparkmoe.checkpoint.DType;
import org.junit.jupiter.api.Test;
import picocli.CommandLine.TypeConversionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConvertersTest {
    @Test
    void byteSizes() {
        Converters.ByteSize c = new Converters.ByteSize();
        assertEquals(5_000_000_000L, c.convert("5000000000"));
        assertEquals(5_000_000_000L, c.convert("5GB"));
        assertEquals(500_000_000L, c.convert("500 MB"));
        assertEquals(300_000L, c.convert("300KB"));
        assertEquals(2L << 30, c.convert("2GiB"));
        assertEquals(3L << 29, c.convert("1.5gib"));
        assertEquals(4_000_000L, c.convert("4M"));
        for (String bad : new String[] {"", "lots", "5XB", "-1", "0", "1e3"}) {
            assertThrows(TypeConversionException.class, () -> c.convert(bad), bad);
        }
    }

    @Test
    void namedValues() {
        assertEquals(DType.F8_E4M3, new Converters.WeightDType().convert("fp8"));
        assertEquals(DType.BF16, new Converters.WeightDType().convert("BF16"));
        TypeConversionException e = assertThrows(TypeConversionException.class, () -> new Converters.WeightDType().convert("int4"));
        assertTrue(e.getMessage().contains("int4"));
        assertThrows(TypeConversionException.class, () -> new Converters.DeviceName().convert("tpu"));
        assertThrows(TypeConversionException.class, () -> new Converters.PrecisionName().convert("fp4"));
    }

    @Test
    void errorLinesNameOurCausesPlainlyAndOthersByType() {
        assertEquals("tensor 'x' is missing", MoeCli.ErrorReporter.describe(new CheckpointException("tensor 'x' is missing")));
        String npe = MoeCli.ErrorReporter.describe(new NullPointerException("boom"));
        assertTrue(npe.startsWith("java.lang.NullPointerException: boom") && npe.contains("--verbose"), npe);
    }
}
