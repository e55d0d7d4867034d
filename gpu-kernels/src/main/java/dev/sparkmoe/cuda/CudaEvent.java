package dev.sparkmoe.cuda;

import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.JCudaDriver;

/**
 * A CUDA event: with timing, for measuring work on a stream ({@link #CudaEvent(CudaContext)}), or without, for ordering
 * streams and waiting for work ({@link #forOrdering}).
 */
public final class CudaEvent extends CudaResource {
    private final CudaContext context;
    private final CUevent event;

    /** An event with timing ({@link #elapsedMsSince}); {@link #synchronize} spins or yields as the driver decides. */
    public CudaEvent(CudaContext context) {
        this(context, CUevent_flags.CU_EVENT_DEFAULT, "device " + context.ordinal());
    }

    private CudaEvent(CudaContext context, int flags, String description) {
        super("CudaEvent", description);
        this.context = context;
        context.makeCurrent();
        this.event = new CUevent();
        Cuda.check(JCudaDriver.cuEventCreate(event, flags), "cuEventCreate(flags " + flags + ")");
    }

    /**
     * An event without timing (cheaper to record and wait on) whose {@link #synchronize} blocks the thread instead of
     * spinning, so that many callers waiting for the GPU do not take the CPU from those still copying data.
     */
    public static CudaEvent forOrdering(CudaContext context, String what) {
        return new CudaEvent(context, CUevent_flags.CU_EVENT_DISABLE_TIMING | CUevent_flags.CU_EVENT_BLOCKING_SYNC,
                what + ", device " + context.ordinal());
    }

    CUevent handle() {
        requireOpen();
        return event;
    }

    public void record(CudaStream stream) {
        requireOpen();
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuEventRecord(event, stream.handle()), "cuEventRecord");
    }

    public void synchronize() { synchronize("recorded work"); }

    /** Blocks until the work captured by the latest record is done; a fault of that work surfaces here, naming {@code what}. */
    public void synchronize(String what) {
        requireOpen();
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuEventSynchronize(event), "cuEventSynchronize after " + what);
    }

    /** Milliseconds from {@code start} to this event (both recorded and complete). */
    public float elapsedMsSince(CudaEvent start) {
        requireOpen();
        start.requireOpen();
        context.makeCurrent();
        float[] ms = new float[1];
        Cuda.check(JCudaDriver.cuEventElapsedTime(ms, start.event, event), "cuEventElapsedTime");
        return ms[0];
    }

    @Override
    protected void release() {
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuEventDestroy(event), "cuEventDestroy");
    }
}
