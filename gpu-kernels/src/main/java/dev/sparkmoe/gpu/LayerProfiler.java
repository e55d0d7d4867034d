package dev.sparkmoe.gpu;

import dev.sparkmoe.cuda.CudaContext;
import dev.sparkmoe.cuda.CudaEvent;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;
import dev.sparkmoe.kernels.MoeTiming;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Benchmark measurements of one engine's layer ({@code moe bench}): the whole layer timed with CUDA events as it runs
 * in production ({@link LayerGraphs}), and its stages timed one by one ({@link LayerKernels} with an event after each
 * stage), both on device-resident random inputs. Holds only the host enqueue times of the last timing; the inputs and
 * events of a measurement are made and closed inside it. Not thread-safe: the engine lock is held.
 */
final class LayerProfiler {
    private final CudaContext ctx;
    private final CudaModule module;
    private final CudaStream stream;
    private final int hidden;
    private final LayerKernels kernels;
    private final LayerGraphs graphs;
    private final MoeTiming timing;
    private int lastQueueOverruns;
    private long[] lastEnqueueNanos = new long[0];

    LayerProfiler(CudaContext ctx, CudaModule module, CudaStream stream, int hidden, LayerKernels kernels, LayerGraphs graphs) {
        this.ctx = ctx;
        this.module = module;
        this.timing = new MoeTiming(module);
        this.stream = stream;
        this.hidden = hidden;
        this.kernels = kernels;
        this.graphs = graphs;
    }

    /**
     * Times the layer on {@code ws} (sized for {@code bucket}) for {@code tokens}: {@code rotations} different inputs are
     * generated on the device and used in turn, so no run finds its input in L2; each run is timed with CUDA events
     * around the layer alone (graph replay), after {@code warmup} untimed runs. With {@code queueMicros} 0 the stream is
     * idle when the host launches the graph, so each run also holds the host's submission latency (an isolated call);
     * with more, a kernel keeps the stream busy that long before the start event, so the graph is queued by the time the
     * GPU reaches it and the events hold the layer's device time alone (layers queued back to back, as in a model).
     *
     * @return milliseconds of each timed run
     */
    float[] timeLayer(LayerWorkspace ws, int bucket, int tokens, int warmup, int runs, int rotations, long seed, int queueMicros) {
        int h = hidden;
        long rowBytes = 4L * tokens * h;
        float[] ms = new float[runs];
        lastEnqueueNanos = new long[runs];
        lastQueueOverruns = 0;
        try (DeviceBuffer inputs = DeviceBuffer.floats(ctx, "bench inputs", (long) rotations * tokens * h);
             CudaEvent start = new CudaEvent(ctx); CudaEvent end = new CudaEvent(ctx)) {
            DeviceWeights.fillNormalF32(module, stream, inputs, seed, 1f);
            ws.numTokens.memset32(tokens, stream);
            for (int i = 0; i < warmup + runs; i++) {
                ws.x.copyFrom(inputs, (i % rotations) * rowBytes, rowBytes, stream);
                long queued = System.nanoTime();
                if (queueMicros > 0) timing.busyWait(stream, queueMicros);
                start.record(stream);
                long t0 = System.nanoTime();
                graphs.launch(ws, bucket, kernels.usesDecodePath(tokens));
                long t1 = System.nanoTime();
                end.record(stream);
                if (i >= warmup) lastEnqueueNanos[i - warmup] = t1 - t0;
                // the host took longer to queue the graph than the busy kernel ran: the GPU may have idled in the run
                if (i >= warmup && queueMicros > 0 && t1 - queued > 1000L * queueMicros) lastQueueOverruns++;
                end.synchronize();
                if (i >= warmup) ms[i - warmup] = end.elapsedMsSince(start);
            }
        }
        return ms;
    }

    /** Host nanoseconds spent queuing the layer (Java + driver: the graph launch) in each run of the last {@link #timeLayer}. */
    long[] lastEnqueueNanos() { return lastEnqueueNanos.clone(); }

    /**
     * Timed runs of the last {@link #timeLayer} with a busy kernel whose host queuing (busy kernel, start event, graph)
     * took longer than the busy kernel runs, so the GPU may have waited for the graph inside the events.
     */
    int lastQueueOverruns() { return lastQueueOverruns; }

    /**
     * Median milliseconds of each stage of the layer on {@code ws} (sized for {@code bucket}) for {@code tokens} (kernels
     * launched one by one with an event after each stage, not as a graph), over {@code runs} runs on device-resident
     * random inputs after two warm-up runs.
     */
    Map<String, Double> profileStages(LayerWorkspace ws, int bucket, int tokens, int runs, long seed) {
        int h = hidden;
        Map<String, float[]> times = new LinkedHashMap<>();
        List<CudaEvent> events = new ArrayList<>();
        List<String> names = new ArrayList<>();
        try (DeviceBuffer input = DeviceBuffer.floats(ctx, "profile input", (long) tokens * h)) {
            DeviceWeights.fillNormalF32(module, stream, input, seed, 1f);
            ws.numTokens.memset32(tokens, stream);
            for (int i = 0; i < runs + 2; i++) {
                ws.x.copyFrom(input, 0, 4L * tokens * h, stream);
                names.clear();
                CudaEvent start = event(events, 0);
                start.record(stream);
                int[] n = {1};
                kernels.enqueueKernels(ws, bucket, stage -> {
                    event(events, n[0]++).record(stream);
                    names.add(stage);
                }, false, kernels.usesDecodePath(tokens));
                event(events, n[0] - 1).synchronize();
                if (i < 2) continue;
                for (int j = 0; j < names.size(); j++) {
                    float ms = events.get(j + 1).elapsedMsSince(events.get(j));
                    times.computeIfAbsent(names.get(j), k -> new float[runs])[i - 2] = ms;
                }
            }
        } finally {
            for (CudaEvent e : events) e.close();
        }
        Map<String, Double> med = new LinkedHashMap<>();
        for (Map.Entry<String, float[]> e : times.entrySet()) {
            float[] v = e.getValue().clone();
            Arrays.sort(v);
            med.put(e.getKey(), (double) v[v.length / 2]);
        }
        return med;
    }

    private CudaEvent event(List<CudaEvent> events, int i) {
        while (events.size() <= i) events.add(new CudaEvent(ctx));
        return events.get(i);
    }
}
