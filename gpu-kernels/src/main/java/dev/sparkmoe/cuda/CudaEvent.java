package dev.sparkmoe.cuda;

import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.JCudaDriver;

/** A CUDA event with timing, for measuring work on a stream. */
public final class CudaEvent extends CudaResource {
    private final CudaContext context;
    private final CUevent event;

    public CudaEvent(CudaContext context) {
        super("CudaEvent", "device " + context.ordinal());
        this.context = context;
        context.makeCurrent();
        this.event = new CUevent();
        Cuda.check(JCudaDriver.cuEventCreate(event, CUevent_flags.CU_EVENT_DEFAULT), "cuEventCreate");
    }

    public void record(CudaStream stream) {
        requireOpen();
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuEventRecord(event, stream.handle()), "cuEventRecord");
    }

    public void synchronize() {
        requireOpen();
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuEventSynchronize(event), "cuEventSynchronize");
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
