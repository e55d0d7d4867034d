package dev.sparkmoe.cpu;

/**
 * The experts' activation in fp32: {@code h = silu(g) * u}, {@code silu(g) = g / (1 + exp(-g))}, as the GPU's reference
 * kernels and small-batch path compute it (an IEEE division; their {@code expf} within 2 ulp of this one). The grouped
 * GEMM1 kernels compute the same formula with the hardware's approximate exp2 and reciprocal, within ~4e-7 relative of
 * it for |g| < 4 and ~2e-6 for |g| up to 40 (grouped_gemm.cuh {@code moe_swiglu_fast_x2}).
 */
public final class Swiglu {
    private Swiglu() {}

    public static float silu(float g) { return g / (1f + (float) Math.exp(-g)); }

    public static float apply(float gate, float up) { return silu(gate) * up; }
}
