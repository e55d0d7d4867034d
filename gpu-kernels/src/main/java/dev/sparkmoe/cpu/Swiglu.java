package dev.sparkmoe.cpu;

/** The experts' activation, in fp32 exactly as the GPU computes it: {@code h = silu(g) * u}, {@code silu(g) = g / (1 + exp(-g))}. */
public final class Swiglu {
    private Swiglu() {}

    public static float silu(float g) { return g / (1f + (float) Math.exp(-g)); }

    public static float apply(float gate, float up) { return silu(gate) * up; }
}
