package dev.sparkmoe.kernels;

import dev.sparkmoe.cuda.CudaFunction;
import dev.sparkmoe.cuda.CudaFunction.Dim;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;

/** Launcher of moe_timing.cu (benchmark support): keeps a stream busy for a given time. */
public final class MoeTiming {
    private final CudaFunction waitNs;

    public MoeTiming(CudaModule module) {
        waitNs = module.function("moe_timing_wait_ns");
    }

    /** Queues a one-thread kernel on {@code stream} that returns {@code micros} microseconds after it starts. */
    public void busyWait(CudaStream stream, int micros) {
        if (micros < 0) throw new IllegalArgumentException("busy wait must be >= 0 us, got " + micros);
        waitNs.launch(stream, Dim.of(1), Dim.of(1), 0, 1000L * micros);
    }
}
