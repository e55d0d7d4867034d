package dev.sparkmoe.cuda;

import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.JCudaDriver;

/**
 * An instantiated CUDA graph, captured from the work that {@code body} queues on a stream; {@link #launch} replays it
 * with one driver call. Buffers the body used must outlive the graph.
 */
public final class CudaGraph extends CudaResource {
    private final CudaContext context;
    private final CUgraphExec exec;

    private CudaGraph(CudaContext context, CUgraphExec exec, String description) {
        super("CudaGraph", description);
        this.context = context;
        this.exec = exec;
    }

    /** Captures what {@code body} queues on {@code stream} (it must not synchronize) into a graph and instantiates it. */
    public static CudaGraph capture(CudaStream stream, String description, Runnable body) {
        CudaContext ctx = stream.context();
        ctx.makeCurrent();
        Cuda.check(JCudaDriver.cuStreamBeginCapture(stream.handle(), CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
                "cuStreamBeginCapture(" + description + ")");
        stream.setCapturing(true);
        CUgraph graph = new CUgraph();
        RuntimeException failure = null;
        try {
            body.run();
        } catch (RuntimeException e) {
            failure = e;
        } finally {
            stream.setCapturing(false);
            int r = JCudaDriver.cuStreamEndCapture(stream.handle(), graph);
            if (failure == null && r != 0) failure = new CudaException("cuStreamEndCapture(" + description + ") failed: "
                    + jcuda.driver.CUresult.stringFor(r), r, null);
        }
        if (failure != null) {
            JCudaDriver.cuGraphDestroy(graph);
            throw failure;
        }
        CUgraphExec exec = new CUgraphExec();
        try {
            Cuda.check(JCudaDriver.cuGraphInstantiate(exec, graph, 0), "cuGraphInstantiate(" + description + ")");
        } finally {
            Cuda.check(JCudaDriver.cuGraphDestroy(graph), "cuGraphDestroy(" + description + ")");
        }
        return new CudaGraph(ctx, exec, description);
    }

    /** Queues one replay of the graph on {@code stream}. */
    public void launch(CudaStream stream) {
        requireOpen();
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuGraphLaunch(exec, stream.handle()), "cuGraphLaunch(" + this + ")");
        if (Cuda.syncCheck()) stream.synchronize("graph " + this);
    }

    @Override
    protected void release() {
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuGraphExecDestroy(exec), "cuGraphExecDestroy");
    }
}
