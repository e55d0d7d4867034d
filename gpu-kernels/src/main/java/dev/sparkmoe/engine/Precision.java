package dev.sparkmoe.engine;

/** The arithmetic of a MoE layer forward. */
public enum Precision {
    /** Activations in fp32, weights exactly as stored (dequantized), fp32-or-better accumulation. */
    NATIVE,
    /**
     * The GPU FP8 recipe: the layer input and the SwiGLU output are quantized per token per 128 channels to E4M3
     * (scale = amax / 448, round to nearest even, saturating), GEMMs on those values with fp32 accumulation.
     */
    FP8;

    public static Precision parse(String s) {
        return switch (s.toLowerCase()) {
            case "native" -> NATIVE;
            case "fp8" -> FP8;
            default -> throw new MoeEngineException("precision '" + s + "' is not one of native, fp8");
        };
    }
}
