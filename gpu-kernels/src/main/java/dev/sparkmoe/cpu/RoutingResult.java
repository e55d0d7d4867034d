package dev.sparkmoe.cpu;

/**
 * The experts each token goes to and their weights: {@code experts[t*k + j]} is the j-th choice of token t
 * (in selection order: best first, ties to the lower expert index) and {@code weights[t*k + j]} its combine weight.
 */
public record RoutingResult(int tokens, int topK, int[] experts, float[] weights) {
    public int expert(int token, int j) { return experts[token * topK + j]; }
    public float weight(int token, int j) { return weights[token * topK + j]; }
}
