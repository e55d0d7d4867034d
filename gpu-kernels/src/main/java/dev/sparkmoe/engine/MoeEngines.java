package dev.sparkmoe.engine;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.cpu.CpuMoeEngine;
import dev.sparkmoe.gpu.GpuMoeEngine;

import java.util.Optional;

/** Opens the engine for one MoE layer of a checkpoint on the requested device. */
public final class MoeEngines {
    private MoeEngines() {}

    /**
     * @param threads CPU worker threads (0 = all available processors); ignored on the GPU
     * @param gpuOrdinal CUDA device ordinal; ignored on the CPU
     */
    public static MoeEngine open(Checkpoint ckpt, int layer, Device device, Precision precision, int threads, int gpuOrdinal) {
        return open(MoeLayerWeights.load(ckpt, layer), device, precision, threads, gpuOrdinal);
    }

    /** The engine of layer weights already loaded (e.g. one load for engines on two devices). */
    public static MoeEngine open(MoeLayerWeights w, Device device, Precision precision, int threads, int gpuOrdinal) {
        return switch (device) {
            case CPU -> new CpuMoeEngine(w, precision, threads);
            case GPU -> {
                Optional<String> why = GpuMoeEngine.unavailableReason();
                if (why.isPresent()) throw new MoeEngineException("--device gpu: the GPU engine is not available: " + why.get());
                yield GpuMoeEngine.open(w, precision, gpuOrdinal);
            }
            case AUTO -> GpuMoeEngine.unavailableReason().isPresent()
                    ? new CpuMoeEngine(w, precision, threads)
                    : GpuMoeEngine.open(w, precision, gpuOrdinal);
        };
    }
}
