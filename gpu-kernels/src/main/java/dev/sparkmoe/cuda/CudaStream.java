package dev.sparkmoe.cuda;

import jcuda.driver.CUstream;
import jcuda.driver.CUstreamCaptureStatus;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

/** A non-blocking CUDA stream of one context, of default priority or of the context's highest / lowest priority. */
public final class CudaStream extends CudaResource {
    /** Scheduling priority: the CTA scheduler starts pending blocks of higher-priority streams first. */
    public enum Priority { DEFAULT, HIGHEST, LOWEST }

    private final CudaContext context;
    private final CUstream stream;
    private volatile boolean capturing;

    public CudaStream(CudaContext context) {
        this(context, create(context, Priority.DEFAULT));
    }

    /**
     * A stream of the given priority. Kernels captured into a CUDA graph from such a stream keep its priority, so a
     * side branch of a layer graph can be made to fill only the SMs the main branch leaves idle.
     */
    public CudaStream(CudaContext context, Priority priority) {
        this(context, create(context, priority));
    }

    private CudaStream(CudaContext context, CUstream s) {
        super("CudaStream", "device " + context.ordinal());
        this.context = context;
        this.stream = s;
    }

    private static CUstream create(CudaContext context, Priority priority) {
        context.makeCurrent();
        CUstream s = new CUstream();
        if (priority == Priority.DEFAULT) {
            Cuda.check(JCudaDriver.cuStreamCreate(s, CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
            return s;
        }
        int[] least = new int[1], greatest = new int[1]; // numerically: greatest priority is the smallest number
        Cuda.check(JCudaDriver.cuCtxGetStreamPriorityRange(least, greatest), "cuCtxGetStreamPriorityRange");
        int p = priority == Priority.HIGHEST ? greatest[0] : least[0];
        Cuda.check(JCudaDriver.cuStreamCreateWithPriority(s, CUstream_flags.CU_STREAM_NON_BLOCKING, p),
                "cuStreamCreateWithPriority(" + priority + " = " + p + ")");
        return s;
    }

    public CudaContext context() { return context; }

    CUstream handle() {
        requireOpen();
        return stream;
    }

    /**
     * True while this stream is being captured into a graph - as the origin of {@link CudaGraph#capture}, or as a side
     * stream that joined the capture by waiting for an event recorded on a capturing stream: synchronizing is then
     * illegal.
     */
    boolean capturing() {
        if (capturing) return true;
        context.makeCurrent();
        int[] status = new int[1];
        Cuda.check(JCudaDriver.cuStreamIsCapturing(handle(), status), "cuStreamIsCapturing");
        return status[0] != CUstreamCaptureStatus.CU_STREAM_CAPTURE_STATUS_NONE;
    }

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
