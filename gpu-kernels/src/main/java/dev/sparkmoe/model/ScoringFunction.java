package dev.sparkmoe.model;

/** How router logits become expert scores. */
public enum ScoringFunction {
    /** softmax over all routed experts (Mixtral, Qwen2/3-MoE). */
    SOFTMAX,
    /** element-wise sigmoid (DeepSeek-V3), with bias-corrected, group-limited selection. */
    SIGMOID;

    public static ScoringFunction fromHf(String name) {
        if (name == null) return SOFTMAX;
        return switch (name) {
            case "softmax" -> SOFTMAX;
            case "sigmoid" -> SIGMOID;
            default -> throw new MoeConfigException("scoring_func '" + name + "' is not supported (softmax or sigmoid)");
        };
    }
}
