package dev.sparkmoe.model;

import java.util.Arrays;

/**
 * The Hugging Face model families whose MoE layers this library runs, with each family's published tensor names.
 * {@code L} is the decoder layer index, {@code E} the expert index.
 */
public enum ModelFamily {
    MIXTRAL("mixtral", "model.layers.%d.block_sparse_moe", "gate", "experts.%d.w1", "experts.%d.w3", "experts.%d.w2"),
    QWEN2_MOE("qwen2_moe", "model.layers.%d.mlp", "gate", "experts.%d.gate_proj", "experts.%d.up_proj", "experts.%d.down_proj"),
    QWEN3_MOE("qwen3_moe", "model.layers.%d.mlp", "gate", "experts.%d.gate_proj", "experts.%d.up_proj", "experts.%d.down_proj"),
    DEEPSEEK_V3("deepseek_v3", "model.layers.%d.mlp", "gate", "experts.%d.gate_proj", "experts.%d.up_proj", "experts.%d.down_proj");

    private final String hfModelType;
    private final String moePrefix;
    private final String router;
    private final String gateProj;
    private final String upProj;
    private final String downProj;

    ModelFamily(String hfModelType, String moePrefix, String router, String gateProj, String upProj, String downProj) {
        this.hfModelType = hfModelType;
        this.moePrefix = moePrefix;
        this.router = router;
        this.gateProj = gateProj;
        this.upProj = upProj;
        this.downProj = downProj;
    }

    /** The {@code model_type} string of config.json. */
    public String hfModelType() { return hfModelType; }

    public static ModelFamily fromHfModelType(String modelType) {
        for (ModelFamily f : values()) if (f.hfModelType.equals(modelType)) return f;
        throw new MoeConfigException("model_type '" + modelType + "' is not supported; supported: "
                + Arrays.stream(values()).map(ModelFamily::hfModelType).toList());
    }

    private String prefix(int layer) { return String.format(moePrefix, layer) + "."; }

    /** Router (gate) weight, [E, H]. */
    public String routerWeight(int layer) { return prefix(layer) + router + ".weight"; }

    /** DeepSeek-V3's selection bias, [E]. */
    public String routerBias(int layer) { return prefix(layer) + router + ".e_score_correction_bias"; }

    /** Routed expert projection weight: gate and up are [I, H], down is [H, I]. */
    public String expertWeight(int layer, int expert, Projection p) {
        String pattern = switch (p) { case GATE -> gateProj; case UP -> upProj; case DOWN -> downProj; };
        return prefix(layer) + String.format(pattern, expert) + ".weight";
    }

    /** Shared expert projection weight (DeepSeek-V3 {@code shared_experts}, Qwen2-MoE {@code shared_expert}). */
    public String sharedExpertWeight(int layer, Projection p) {
        String module = this == QWEN2_MOE ? "shared_expert" : "shared_experts";
        String proj = switch (p) { case GATE -> "gate_proj"; case UP -> "up_proj"; case DOWN -> "down_proj"; };
        return prefix(layer) + module + "." + proj + ".weight";
    }

    /** Qwen2-MoE's sigmoid gate on the shared expert output, [1, H]. */
    public String sharedExpertGateWeight(int layer) { return prefix(layer) + "shared_expert_gate.weight"; }

    /** The three projections of a SwiGLU expert: down(silu(gate x) * up x). */
    public enum Projection { GATE, UP, DOWN }
}
