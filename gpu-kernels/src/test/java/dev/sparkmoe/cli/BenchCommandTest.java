package dev.sparkmoe.cli;

import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.model.MoeConfig;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The counting conventions of {@code moe bench} (no GPU needed) and its refusal without a GPU. */
class BenchCommandTest {
    @Test
    void flopsCountRoutedPairsRouterAndSharedExpert() {
        MoeConfig ds = SyntheticCheckpoint.preset("deepseek-v3", 1, DType.F8_E4M3);
        double h = 7168, i = 2048;
        double perToken = 8 * (2 * h * 2 * i + 2 * i * h) + 2 * h * 256 + 6 * h * 2048;
        assertEquals(4096 * perToken, BenchCommand.flops(ds, 4096), 1e-6 * 4096 * perToken);
        MoeConfig mix = SyntheticCheckpoint.preset("mixtral-8x7b", 1, DType.BF16);
        assertEquals(16 * (2 * 6.0 * 4096 * 14336 + 2.0 * 4096 * 8), BenchCommand.flops(mix, 16), 1);
    }

    @Test
    void weightBytesCountUsedExpertsSharedAndRouter() {
        MoeConfig ds = SyntheticCheckpoint.preset("deepseek-v3", 1, DType.F8_E4M3);
        double expertFp8 = 3.0 * 7168 * 2048 * (1 + 4.0 / (128 * 128));
        double router = 4.0 * 7168 * 256;
        assertEquals(256 * expertFp8 + expertFp8 + router, BenchCommand.weightBytes(ds, Precision.FP8, 256), 1);
        // BF16 reads twice the bytes per weight and has no scales
        assertEquals(10 * 3.0 * 7168 * 2048 * 2 + 3.0 * 7168 * 2048 * 2 + router, BenchCommand.weightBytes(ds, Precision.NATIVE, 10), 1);
    }

    @Test
    void medianOfOddAndEvenCounts() {
        assertEquals(2.0, BenchCommand.median(new float[] {3, 1, 2}));
        assertEquals(2.5, BenchCommand.median(new float[] {4, 1, 3, 2}));
    }

    @Test
    void variantsAreSettingsAssignments() {
        assertEquals(java.util.Map.of("sparkmoe.gpu.routerKernel", "tc", "sparkmoe.gpu.sharedExpertStream", "false"),
                BenchCommand.parseVariant("sparkmoe.gpu.routerKernel=tc; sparkmoe.gpu.sharedExpertStream=false"));
        IllegalArgumentException typo = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> BenchCommand.parseVariant("sparkmoe.gpu.routerKernell=tc"));
        assertTrue(typo.getMessage().contains("'sparkmoe.gpu.routerKernell' is not a GPU engine setting"), typo.getMessage());
        IllegalArgumentException bare = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> BenchCommand.parseVariant("tc"));
        assertTrue(bare.getMessage().contains("expected KEY=VALUE"), bare.getMessage());
    }

    @Test
    void aMalformedVariantIsRefusedBeforeAnyGpuWork() {
        StringWriter err = new StringWriter();
        CommandLine cl = new CommandLine(new MoeCli());
        cl.setErr(new PrintWriter(err));
        int rc = cl.execute("bench", "--shapes", "tiny-mixtral", "--tokens", "16", "--variant", "routerKernel");
        assertNotEquals(0, rc);
        assertTrue(err.toString().contains("--variant: expected KEY=VALUE"), err.toString());
    }

    @Test
    void withoutAGpuItSaysWhyInOneLine() {
        org.junit.jupiter.api.Assumptions.assumeTrue(dev.sparkmoe.gpu.GpuMoeEngine.unavailableReason().isPresent(), "a GPU is present");
        StringWriter err = new StringWriter();
        CommandLine cl = new CommandLine(new MoeCli());
        cl.setErr(new PrintWriter(err));
        int rc = cl.execute("bench", "--shapes", "tiny-mixtral", "--tokens", "16");
        assertNotEquals(0, rc);
        assertTrue(err.toString().contains("moe bench needs the GPU engine"), err.toString());
    }
}
