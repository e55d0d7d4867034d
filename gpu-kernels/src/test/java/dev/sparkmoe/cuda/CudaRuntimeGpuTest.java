package dev.sparkmoe.cuda;

import dev.sparkmoe.cuda.CudaFunction.Dim;
import dev.sparkmoe.gpu.GpuTest;
import dev.sparkmoe.testing.TensorChecks;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The JCuda wrappers on a real GPU: copies, memset, launches, graphs, events, ownership rules, errors. */
@GpuTest
class CudaRuntimeGpuTest {

    @Test
    void copiesRoundTripAndMemsetPoisons() {
        try (CudaContext ctx = CudaContext.open(0); CudaStream s = new CudaStream(ctx);
             DeviceBuffer b = DeviceBuffer.floats(ctx, "round trip", 1000)) {
            assertTrue(ctx.computeCapability() >= 90, "compute capability " + ctx.computeCapability());
            float[] x = TensorChecks.randomNormal(TensorChecks.freshSeed(), 1000, 1);
            b.upload(x);
            float[] back = new float[1000];
            b.download(back);
            assertArrayEquals(x, back);
            b.memset32(Float.floatToRawIntBits(TensorChecks.POISON), s);
            s.synchronize();
            b.download(back);
            for (float v : back) assertEquals(Float.floatToRawIntBits(TensorChecks.POISON), Float.floatToRawIntBits(v));
            ByteBuffer bb = ByteBuffer.allocateDirect(16).order(ByteOrder.LITTLE_ENDIAN);
            bb.putFloat(1f).putFloat(2f).putFloat(3f).putFloat(4f).flip();
            b.upload(bb, 8);
            float[] head = new float[6];
            b.download(head);
            assertEquals(3f, head[4]);
            CudaException tooBig = assertThrows(CudaException.class, () -> b.upload(new float[1001]));
            assertTrue(tooBig.getMessage().contains("round trip"), tooBig.getMessage());
        }
    }

    @Test
    void kernelLaunchGraphReplayAndEvents() {
        try (CudaContext ctx = CudaContext.open(0); CudaModule m = CudaModule.loadKernels(ctx); CudaStream s = new CudaStream(ctx);
             DeviceBuffer b = DeviceBuffer.floats(ctx, "fill", 4096); CudaEvent e0 = new CudaEvent(ctx); CudaEvent e1 = new CudaEvent(ctx)) {
            CudaFunction fill = m.function("moe_fill_f32");
            fill.launch(s, Dim.of(4), Dim.of(256), 0, b, 4096L, 1.5f);
            s.synchronize();
            float[] out = new float[4096];
            b.download(out);
            for (float v : out) assertEquals(1.5f, v);
            try (CudaGraph g = CudaGraph.capture(s, "fill graph", () -> fill.launch(s, Dim.of(4), Dim.of(256), 0, b, 4096L, 2.5f))) {
                b.memset((byte) 0, s);
                e0.record(s);
                g.launch(s);
                e1.record(s);
                e1.synchronize();
                assertTrue(e1.elapsedMsSince(e0) >= 0);
                b.download(out);
                for (float v : out) assertEquals(2.5f, v);
            }
            CudaException missing = assertThrows(CudaException.class, () -> m.function("no_such_kernel"));
            assertTrue(missing.getMessage().contains("no_such_kernel") && missing.getMessage().contains("CUDA_ERROR"), missing.getMessage());
            CudaException badLaunch = assertThrows(CudaException.class, () -> fill.launch(s, Dim.of(1), Dim.of(4096), 0, b, 1L, 0f));
            assertTrue(badLaunch.getMessage().contains("moe_fill_f32"), badLaunch.getMessage());
        }
    }

    @Test
    void secondCloseAndUseAfterCloseThrow() {
        try (CudaContext ctx = CudaContext.open(0)) {
            DeviceBuffer b = DeviceBuffer.ints(ctx, "closed twice", 4);
            b.close();
            CudaException twice = assertThrows(CudaException.class, b::close);
            assertTrue(twice.getMessage().contains("closed twice") && twice.getMessage().contains("#" + b.id()), twice.getMessage());
            assertThrows(CudaException.class, () -> b.upload(new int[4]));
        }
    }

    @Test
    void unclosedHandlesAreListedWithTheirIds() {
        try (CudaContext ctx = CudaContext.open(0)) {
            DeviceBuffer b = DeviceBuffer.bytes(ctx, "left open", 64);
            assertTrue(LeakTracker.live().stream().anyMatch(l -> l.contains("#" + b.id()) && l.contains("left open")), LeakTracker.live().toString());
            b.close();
            assertTrue(LeakTracker.live().stream().noneMatch(l -> l.contains("left open")));
        }
    }
}
