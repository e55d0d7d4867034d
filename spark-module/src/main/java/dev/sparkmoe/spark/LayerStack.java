package dev.sparkmoe.spark;

import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeStack;

import java.util.List;

/**
 * MoE layers applied in sequence, each as {@code x <- moe(x)} or, with the residual, {@code x <- x + moe(x)}.
 * Runs as {@link MoeStack#of}: device-resident (one upload and one download per batch, residual on the device) when
 * all layers are GPU engines of one device, else layer by layer through host memory - bitwise the same results.
 * Holds no engine of its own: the engines belong to the {@link EngineRegistry}. Thread-safe (buffers are per call).
 */
public final class LayerStack {
    private final MoeStack stack;

    /** The engines in order; empty lists and mixed hidden sizes are refused by {@link MoeStack#of}. */
    public LayerStack(List<MoeEngine> engines, boolean residual) {
        this.stack = MoeStack.of(engines, residual);
    }

    /** The stack for {@code spec} on this JVM, loading engines once per JVM. */
    public static LayerStack open(MoeLayerSpec spec) {
        return new LayerStack(EngineRegistry.acquire(spec), spec.residual());
    }

    public int hiddenSize() { return stack.hiddenSize(); }

    public String deviceDescription() { return stack.layers().size() == 1 ? stack.layers().get(0).deviceDescription() : stack.description(); }

    /** {@code out[0, tokens*H)} = the stack applied to {@code x[0, tokens*H)}; {@code x} (a different array) is left unchanged. */
    public void forward(float[] x, int tokens, float[] out) {
        stack.forward(x, tokens, out); // both stacks check the arguments (distinct arrays, sizes, finite inputs)
    }
}
