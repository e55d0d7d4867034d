package dev.sparkmoe.gpu;

import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.engine.Precision;

import java.util.Optional;

/** The single-GPU MoE layer (issue 3). Until its kernels land this says plainly that it is not available. */
public final class GpuMoeEngine {
    private GpuMoeEngine() {}

    public static Optional<String> unavailableReason() {
        return Optional.of("the GPU engine is not available yet in this build");
    }

    public static dev.sparkmoe.engine.MoeEngine open(MoeLayerWeights w, Precision p, int ordinal) {
        throw new MoeEngineException("the GPU engine is not available yet in this build");
    }
}
