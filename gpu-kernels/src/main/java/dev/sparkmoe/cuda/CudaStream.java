package dev.sparkmoe.cuda;

import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

/** A non-blocking CUDA stream of one context. */
public final class CudaStream extends CudaResource {
    private final CudaContext context;
    private final CUstream stream;
    private volatile boolean capturing;

    public CudaStream(CudaContext context) {
        this(context, create(context));
    }

    private CudaStream(CudaContext context, CUstream s) {
        super("CudaStream", "device " + context.ordinal());
        this.context = context;
        this.stream = s;
    }

    private static CUstream create(CudaContext context) {
        context.makeCurrent();
        CUstream s = new CUstream();
        Cuda.check(JCudaDriver.cuStreamCreate(s, CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        return s;
    }

    public CudaContext context() { return context; }

    CUstream handle() {
        requireOpen();
        return stream;
    }

    /** True between {@link CudaGraph#capture} begin and end: synchronizing is then illegal. */
    boolean capturing() { return capturing; }

    void setCapturing(boolean on) { capturing = on; }

    /**
     * Makes the work queued on this stream after this call wait until the work captured by {@code event}'s latest
     * {@link CudaEvent#record} (at the time of this call) is done; an event never recorded does not wait. No host wait.
     */
    public void waitFor(CudaEvent event) {
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuStreamWaitEvent(handle(), event.handle(), 0), "cuStreamWaitEvent(" + event + ")");
    }

    /** Blocks until everything queued on this stream is done; a fault of an earlier kernel surfaces here, naming {@code what}. */
    public void synchronize(String what) {
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuStreamSynchronize(handle()), "cuStreamSynchronize after " + what);
    }

    public void synchronize() { synchronize("queued work"); }

    @Override
    protected void release() {
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuStreamDestroy(stream), "cuStreamDestroy");
    }
}
