package dev.sparkmoe.gpu;

import dev.sparkmoe.cuda.CudaGraph;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.engine.MoeEngineException;

import java.util.HashMap;
import java.util.Map;

/**
 * How a layer is queued on its stream: its {@link LayerKernels} captured once per (bucket, path) as a CUDA graph and
 * replayed ({@link GpuEngineSettings#GRAPHS}), or launched one by one. Graphs bake in the workspace's addresses, so
 * they are dropped ({@link #clear}) before the workspace is replaced. Not thread-safe: the engine lock is held.
 */
final class LayerGraphs implements AutoCloseable {
    /** One graph per bucket and path: a bucket can have a graph of each (grouped and small-batch). */
    record Key(int bucket, boolean smallBatchPath) {}

    private final LayerKernels kernels;
    private final CudaStream stream;
    private final int layer;
    private final boolean enabled;
    private final Map<Key, CudaGraph> graphs = new HashMap<>();
    private boolean closed;

    /** @param enabled capture and replay graphs; false: every launch queues the kernels one by one */
    LayerGraphs(LayerKernels kernels, CudaStream stream, int layer, boolean enabled) {
        this.kernels = kernels;
        this.stream = stream;
        this.layer = layer;
        this.enabled = enabled;
    }

    /** Queues the whole layer for the token count already in the workspace: the bucket's graph, or the kernels. */
    void launch(LayerWorkspace ws, int bucket, boolean small) {
        if (closed) throw new MoeEngineException("the CUDA graphs of MoE layer " + layer + " are closed");
        if (!enabled) {
            kernels.enqueueKernels(ws, bucket, small);
            return;
        }
        Key key = new Key(bucket, small);
        CudaGraph g = graphs.get(key);
        if (g == null) {
            g = CudaGraph.capture(stream, "MoE layer " + layer + " bucket " + bucket + (small ? " (small-batch path)" : ""),
                    () -> kernels.enqueueKernels(ws, bucket, small));
            graphs.put(key, g);
        }
        g.launch(stream);
    }

    /** Closes every graph (the workspace they use is about to go); later launches capture anew. */
    void clear() {
        for (CudaGraph g : graphs.values()) g.close();
        graphs.clear();
    }

    /** Closes every graph; no launch after this. A second close throws. */
    @Override
    public void close() {
        if (closed) throw new MoeEngineException("the CUDA graphs of MoE layer " + layer + " were closed twice");
        closed = true;
        clear();
    }
}
