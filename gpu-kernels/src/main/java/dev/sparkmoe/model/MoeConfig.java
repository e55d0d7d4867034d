package dev.sparkmoe.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The MoE part of a Hugging Face model configuration, read from its {@code config.json}.
 *
 * @param family                 model family ({@code model_type})
 * @param hiddenSize             H, the width of the hidden state
 * @param expertIntermediateSize I, the intermediate width of one routed expert
 * @param numExperts             E, routed experts per MoE layer
 * @param topK                   experts chosen per token
 * @param sharedIntermediateSize total intermediate width of the always-on shared expert(s); 0 when none
 * @param sharedExpertGated      Qwen2-MoE: the shared expert output is scaled by sigmoid(shared_expert_gate · x)
 * @param scoring                softmax or sigmoid router scores
 * @param nGroup                 DeepSeek-V3 expert groups (1 = no group limit)
 * @param topkGroup              groups kept per token
 * @param normTopkProb           renormalize the chosen weights to sum 1
 * @param routedScalingFactor    multiplies the routed weights (DeepSeek-V3)
 * @param hasSelectionBias       the router has {@code e_score_correction_bias} (DeepSeek-V3 noaux_tc)
 * @param numLayers              decoder layers
 * @param moeLayers              which decoder layers are MoE layers
 * @param weightBlockSize        FP8 checkpoints: the [rows, cols] block of one weight scale; null for unquantized
 */
public record MoeConfig(
        ModelFamily family,
        int hiddenSize,
        int expertIntermediateSize,
        int numExperts,
        int topK,
        int sharedIntermediateSize,
        boolean sharedExpertGated,
        ScoringFunction scoring,
        int nGroup,
        int topkGroup,
        boolean normTopkProb,
        float routedScalingFactor,
        boolean hasSelectionBias,
        int numLayers,
        Set<Integer> moeLayers,
        int[] weightBlockSize) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public MoeConfig {
        require(hiddenSize > 0, "hidden_size must be positive, got " + hiddenSize);
        require(expertIntermediateSize > 0, "expert intermediate size must be positive, got " + expertIntermediateSize);
        require(numExperts > 0, "number of routed experts must be positive, got " + numExperts);
        require(topK > 0 && topK <= numExperts, "num_experts_per_tok must be in [1, " + numExperts + "], got " + topK);
        require(sharedIntermediateSize >= 0, "shared expert intermediate size must be >= 0");
        require(nGroup >= 1 && numExperts % nGroup == 0,
                "n_group " + nGroup + " must divide the " + numExperts + " routed experts");
        require(topkGroup >= 1 && topkGroup <= nGroup, "topk_group must be in [1, n_group=" + nGroup + "], got " + topkGroup);
        require(nGroup == 1 || topK <= topkGroup * (numExperts / nGroup),
                "num_experts_per_tok " + topK + " exceeds the experts of the " + topkGroup + " kept groups");
        require(nGroup == 1 || numExperts / nGroup >= 2, "group-limited routing needs at least 2 experts per group");
        require(numLayers > 0, "num_hidden_layers must be positive");
        moeLayers = Set.copyOf(new TreeSet<>(moeLayers));
        require(weightBlockSize == null || (weightBlockSize.length == 2 && weightBlockSize[0] > 0 && weightBlockSize[1] > 0),
                "weight_block_size must be two positive integers");
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new MoeConfigException(message);
    }

    public int groupSize() { return numExperts / nGroup; }

    public boolean hasSharedExpert() { return sharedIntermediateSize > 0; }

    public boolean isFp8Checkpoint() { return weightBlockSize != null; }

    public boolean isMoeLayer(int layer) { return moeLayers.contains(layer); }

    /** The MoE layers, ascending. */
    public List<Integer> moeLayerList() { return new ArrayList<>(new TreeSet<>(moeLayers)); }

    /** Throws a clear error when {@code layer} is not a MoE layer of this model. */
    public void requireMoeLayer(int layer) {
        if (!isMoeLayer(layer)) {
            throw new MoeConfigException("layer " + layer + " is not a MoE layer of this " + family.hfModelType()
                    + " model (" + numLayers + " layers; MoE layers " + describeLayers() + ")");
        }
    }

    public String describeLayers() {
        List<Integer> l = moeLayerList();
        if (l.isEmpty()) return "none";
        if (l.size() == l.get(l.size() - 1) - l.get(0) + 1) return l.get(0) + ".." + l.get(l.size() - 1);
        return l.toString();
    }

    /** Parameters of one MoE layer (router, routed experts, shared experts). */
    public long parametersPerLayer() {
        long expert = 3L * hiddenSize * expertIntermediateSize;
        long shared = 3L * hiddenSize * sharedIntermediateSize + (sharedExpertGated ? hiddenSize : 0);
        return (long) numExperts * hiddenSize + numExperts * expert + shared;
    }

    public static MoeConfig read(Path configJson) {
        try {
            return fromJson(JSON.readTree(Files.readAllBytes(configJson)));
        } catch (IOException e) {
            throw new MoeConfigException("cannot read " + configJson + ": " + e.getMessage(), e);
        }
    }

    /** Parses the fields of a Hugging Face config.json that define its MoE layers. */
    public static MoeConfig fromJson(JsonNode c) {
        if (c == null || !c.isObject()) throw new MoeConfigException("config.json is not a JSON object");
        ModelFamily family = ModelFamily.fromHfModelType(text(c, "model_type", null));
        String act = text(c, "hidden_act", "silu");
        if (!"silu".equals(act)) {
            throw new MoeConfigException("hidden_act '" + act + "' is not supported: experts are SwiGLU (silu) only");
        }
        int h = integer(c, "hidden_size", -1);
        int layers = integer(c, "num_hidden_layers", -1);
        int[] block = null;
        JsonNode q = c.get("quantization_config");
        if (q != null && q.isObject()) {
            String method = text(q, "quant_method", "");
            if (!"fp8".equals(method)) throw new MoeConfigException("quantization_config.quant_method '" + method + "' is not supported (fp8 only)");
            String fmt = text(q, "fmt", "e4m3");
            if (!"e4m3".equals(fmt)) throw new MoeConfigException("quantization_config.fmt '" + fmt + "' is not supported (e4m3 only)");
            JsonNode b = q.get("weight_block_size");
            if (b == null || !b.isArray() || b.size() != 2) throw new MoeConfigException("quantization_config.weight_block_size must be [rows, cols]");
            block = new int[] {b.get(0).asInt(), b.get(1).asInt()};
        }
        Set<Integer> moe = new TreeSet<>();
        return switch (family) {
            case MIXTRAL -> {
                for (int l = 0; l < Math.max(layers, 0); l++) moe.add(l);
                yield new MoeConfig(family, h, integer(c, "intermediate_size", -1), integer(c, "num_local_experts", -1),
                        integer(c, "num_experts_per_tok", 2), 0, false, ScoringFunction.SOFTMAX, 1, 1, true, 1f, false,
                        layers, moe, block);
            }
            case QWEN2_MOE, QWEN3_MOE -> {
                int step = integer(c, "decoder_sparse_step", 1);
                if (step < 1) throw new MoeConfigException("decoder_sparse_step must be >= 1, got " + step);
                Set<Integer> mlpOnly = new TreeSet<>();
                JsonNode m = c.get("mlp_only_layers");
                if (m != null && m.isArray()) m.forEach(n -> mlpOnly.add(n.asInt()));
                int experts = integer(c, "num_experts", -1);
                for (int l = 0; l < Math.max(layers, 0); l++) {
                    if (!mlpOnly.contains(l) && experts > 0 && (l + 1) % step == 0) moe.add(l);
                }
                int shared = family == ModelFamily.QWEN2_MOE ? integer(c, "shared_expert_intermediate_size", 0) : 0;
                yield new MoeConfig(family, h, integer(c, "moe_intermediate_size", -1), experts,
                        integer(c, "num_experts_per_tok", -1), shared, shared > 0, ScoringFunction.SOFTMAX, 1, 1,
                        bool(c, "norm_topk_prob", false), 1f, false, layers, moe, block);
            }
            case DEEPSEEK_V3 -> {
                // Defaults are those of transformers' DeepseekV3Config, used when config.json omits a field.
                int first = integer(c, "first_k_dense_replace", 3);
                int freq = integer(c, "moe_layer_freq", 1);
                if (freq < 1) throw new MoeConfigException("moe_layer_freq must be >= 1, got " + freq);
                int experts = integer(c, "n_routed_experts", -1);
                for (int l = 0; l < Math.max(layers, 0); l++) {
                    if (experts > 0 && l >= first && l % freq == 0) moe.add(l);
                }
                int inter = integer(c, "moe_intermediate_size", -1);
                String topkMethod = text(c, "topk_method", "noaux_tc");
                if (!"noaux_tc".equals(topkMethod)) {
                    throw new MoeConfigException("topk_method '" + topkMethod + "' is not supported (DeepSeek-V3 noaux_tc only)");
                }
                yield new MoeConfig(family, h, inter, experts, integer(c, "num_experts_per_tok", -1),
                        integer(c, "n_shared_experts", 1) * inter, false,
                        ScoringFunction.fromHf(text(c, "scoring_func", "sigmoid")),
                        integer(c, "n_group", 8), integer(c, "topk_group", 4), bool(c, "norm_topk_prob", true),
                        (float) c.path("routed_scaling_factor").asDouble(2.5), true, layers, moe, block);
            }
        };
    }

    /** A config.json for this configuration, in the family's own field names (the generator writes it). */
    public ObjectNode toHfJson() {
        ObjectNode c = JSON.createObjectNode();
        c.put("model_type", family.hfModelType());
        c.putArray("architectures").add(switch (family) {
            case MIXTRAL -> "MixtralForCausalLM";
            case QWEN2_MOE -> "Qwen2MoeForCausalLM";
            case QWEN3_MOE -> "Qwen3MoeForCausalLM";
            case DEEPSEEK_V3 -> "DeepseekV3ForCausalLM";
        });
        c.put("hidden_size", hiddenSize);
        c.put("num_hidden_layers", numLayers);
        c.put("hidden_act", "silu");
        c.put("num_experts_per_tok", topK);
        switch (family) {
            case MIXTRAL -> {
                c.put("intermediate_size", expertIntermediateSize);
                c.put("num_local_experts", numExperts);
            }
            case QWEN2_MOE, QWEN3_MOE -> {
                c.put("moe_intermediate_size", expertIntermediateSize);
                c.put("num_experts", numExperts);
                c.put("norm_topk_prob", normTopkProb);
                int step = 1;
                c.put("decoder_sparse_step", step);
                ArrayNode mlpOnly = c.putArray("mlp_only_layers");
                for (int l = 0; l < numLayers; l++) if (!moeLayers.contains(l)) mlpOnly.add(l);
                if (family == ModelFamily.QWEN2_MOE) c.put("shared_expert_intermediate_size", sharedIntermediateSize);
            }
            case DEEPSEEK_V3 -> {
                c.put("moe_intermediate_size", expertIntermediateSize);
                c.put("n_routed_experts", numExperts);
                c.put("n_shared_experts", sharedIntermediateSize / expertIntermediateSize);
                c.put("scoring_func", scoring == ScoringFunction.SIGMOID ? "sigmoid" : "softmax");
                c.put("topk_method", "noaux_tc");
                c.put("n_group", nGroup);
                c.put("topk_group", topkGroup);
                c.put("norm_topk_prob", normTopkProb);
                c.put("routed_scaling_factor", routedScalingFactor);
                int first = moeLayers.isEmpty() ? numLayers : moeLayerList().get(0);
                c.put("first_k_dense_replace", first);
                c.put("moe_layer_freq", 1);
            }
        }
        if (weightBlockSize != null) {
            ObjectNode q = c.putObject("quantization_config");
            q.put("quant_method", "fp8");
            q.put("fmt", "e4m3");
            q.put("activation_scheme", "dynamic");
            q.putArray("weight_block_size").add(weightBlockSize[0]).add(weightBlockSize[1]);
        }
        return c;
    }

    /** A short, printable summary. */
    public Map<String, Object> summary() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("family", family.hfModelType());
        m.put("hidden", hiddenSize);
        m.put("expert_intermediate", expertIntermediateSize);
        m.put("experts", numExperts);
        m.put("top_k", topK);
        m.put("shared_intermediate", sharedIntermediateSize);
        m.put("scoring", scoring.name().toLowerCase());
        if (nGroup > 1) m.put("groups", nGroup + " (keep " + topkGroup + ")");
        m.put("norm_topk_prob", normTopkProb);
        if (routedScalingFactor != 1f) m.put("routed_scaling_factor", routedScalingFactor);
        m.put("layers", numLayers);
        m.put("moe_layers", describeLayers());
        if (weightBlockSize != null) m.put("fp8_block", weightBlockSize[0] + "x" + weightBlockSize[1]);
        return m;
    }

    private static String text(JsonNode c, String field, String dflt) {
        JsonNode n = c.get(field);
        if (n == null || n.isNull()) {
            if (dflt == null) throw new MoeConfigException("config.json has no '" + field + "'");
            return dflt;
        }
        return n.asText();
    }

    private static int integer(JsonNode c, String field, int dflt) {
        JsonNode n = c.get(field);
        if (n == null || n.isNull()) {
            if (dflt < 0) throw new MoeConfigException("config.json has no '" + field + "'");
            return dflt;
        }
        if (!n.canConvertToInt()) throw new MoeConfigException("config.json '" + field + "' must be an integer, got " + n);
        return n.asInt();
    }

    private static boolean bool(JsonNode c, String field, boolean dflt) {
        JsonNode n = c.get(field);
        return n == null || n.isNull() ? dflt : n.asBoolean();
    }

    @Override public boolean equals(Object o) {
        return o instanceof MoeConfig m && toHfJson().equals(m.toHfJson());
    }

    @Override public int hashCode() { return toHfJson().hashCode(); }

    @Override public String toString() { return "MoeConfig" + summary(); }
}
