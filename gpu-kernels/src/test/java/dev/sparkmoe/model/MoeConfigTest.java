package dev.sparkmoe.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** config.json parsing, on samples with the field names and values of the published model configs. */
class MoeConfigTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Mixtral-8x7B-v0.1's config.json (attention and rope fields included, as published). */
    static final String MIXTRAL_8X7B = """
        {
          "architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
          "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
          "max_position_embeddings": 32768, "model_type": "mixtral", "num_attention_heads": 32,
          "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8, "num_local_experts": 8,
          "output_router_logits": false, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.02,
          "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
          "transformers_version": "4.36.0.dev0", "use_cache": true, "vocab_size": 32000
        }""";

    /** Qwen3-30B-A3B's config.json. */
    static final String QWEN3_30B_A3B = """
        {
          "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
          "bos_token_id": 151643, "decoder_sparse_step": 1, "eos_token_id": 151645, "head_dim": 128,
          "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 6144,
          "max_position_embeddings": 40960, "max_window_layers": 48, "mlp_only_layers": [], "model_type": "qwen3_moe",
          "moe_intermediate_size": 768, "norm_topk_prob": true, "num_attention_heads": 32, "num_experts": 128,
          "num_experts_per_tok": 8, "num_hidden_layers": 48, "num_key_value_heads": 4, "output_router_logits": false,
          "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001,
          "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
          "transformers_version": "4.51.0", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936
        }""";

    /** Qwen1.5-MoE-A2.7B (model_type qwen2_moe), with a gated shared expert. */
    static final String QWEN2_MOE_A27B = """
        {
          "architectures": ["Qwen2MoeForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
          "decoder_sparse_step": 1, "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 2048,
          "initializer_range": 0.02, "intermediate_size": 5632, "max_position_embeddings": 8192,
          "max_window_layers": 21, "model_type": "qwen2_moe", "moe_intermediate_size": 1408, "norm_topk_prob": false,
          "num_attention_heads": 16, "num_experts": 60, "num_experts_per_tok": 4, "num_hidden_layers": 24,
          "num_key_value_heads": 16, "output_router_logits": false, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
          "router_aux_loss_coef": 0.001, "shared_expert_intermediate_size": 5632, "sliding_window": 32768,
          "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.39.0.dev0",
          "use_cache": true, "use_sliding_window": false, "vocab_size": 151936
        }""";

    /** DeepSeek-V3's config.json, FP8 block quantization included. */
    static final String DEEPSEEK_V3 = """
        {
          "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
          "aux_loss_alpha": 0.001, "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1, "first_k_dense_replace": 3,
          "hidden_act": "silu", "hidden_size": 7168, "initializer_range": 0.02, "intermediate_size": 18432,
          "kv_lora_rank": 512, "max_position_embeddings": 163840, "model_type": "deepseek_v3",
          "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256,
          "n_shared_experts": 1, "norm_topk_prob": true, "num_attention_heads": 128, "num_experts_per_tok": 8,
          "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1, "q_lora_rank": 1536,
          "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
          "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]},
          "rms_norm_eps": 1e-06, "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid",
          "seq_aux": true, "tie_word_embeddings": false, "topk_group": 4, "topk_method": "noaux_tc",
          "torch_dtype": "bfloat16", "transformers_version": "4.33.1", "use_cache": true, "v_head_dim": 128,
          "vocab_size": 129280
        }""";

    static MoeConfig parse(String json) {
        try {
            return MoeConfig.fromJson(JSON.readTree(json));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new AssertionError(e);
        }
    }

    static MoeConfig parse(String json, Consumer<ObjectNode> edit) {
        try {
            ObjectNode n = (ObjectNode) JSON.readTree(json);
            edit.accept(n);
            return MoeConfig.fromJson(n);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new AssertionError(e);
        }
    }

    static Set<Integer> range(int from, int to) {
        Set<Integer> s = new TreeSet<>();
        for (int i = from; i < to; i++) s.add(i);
        return s;
    }

    @Test
    void mixtral() {
        MoeConfig c = parse(MIXTRAL_8X7B);
        assertEquals(ModelFamily.MIXTRAL, c.family());
        assertEquals(4096, c.hiddenSize());
        assertEquals(14336, c.expertIntermediateSize());
        assertEquals(8, c.numExperts());
        assertEquals(2, c.topK());
        assertEquals(ScoringFunction.SOFTMAX, c.scoring());
        assertTrue(c.normTopkProb(), "Mixtral always renormalizes the top-k weights");
        assertFalse(c.hasSharedExpert());
        assertFalse(c.hasSelectionBias());
        assertEquals(1, c.nGroup());
        assertEquals(32, c.numLayers());
        assertEquals(range(0, 32), c.moeLayers(), "every Mixtral layer is sparse");
        assertFalse(c.isFp8Checkpoint());
        assertEquals("model.layers.5.block_sparse_moe.experts.7.w3.weight",
                c.family().expertWeight(5, 7, ModelFamily.Projection.UP));
    }

    @Test
    void qwen3Moe() {
        MoeConfig c = parse(QWEN3_30B_A3B);
        assertEquals(ModelFamily.QWEN3_MOE, c.family());
        assertEquals(2048, c.hiddenSize());
        assertEquals(768, c.expertIntermediateSize());
        assertEquals(128, c.numExperts());
        assertEquals(8, c.topK());
        assertTrue(c.normTopkProb());
        assertEquals(0, c.sharedIntermediateSize());
        assertEquals(range(0, 48), c.moeLayers());
        // transformers' Qwen3MoeConfig defaults norm_topk_prob to False when the field is absent.
        assertFalse(parse(QWEN3_30B_A3B, n -> n.remove("norm_topk_prob")).normTopkProb());
        // decoder_sparse_step and mlp_only_layers pick the sparse layers: (l + 1) % step == 0 and l not MLP-only.
        MoeConfig sparse = parse(QWEN3_30B_A3B, n -> {
            n.put("num_hidden_layers", 8);
            n.put("decoder_sparse_step", 2);
            n.putArray("mlp_only_layers").add(3).add(4);
        });
        assertEquals(Set.of(1, 5, 7), sparse.moeLayers());
        MoeConfigException e = assertThrows(MoeConfigException.class, () -> sparse.requireMoeLayer(3));
        assertTrue(e.getMessage().contains("layer 3") && e.getMessage().contains("[1, 5, 7]"), e.getMessage());
    }

    @Test
    void qwen2Moe() {
        MoeConfig c = parse(QWEN2_MOE_A27B);
        assertEquals(ModelFamily.QWEN2_MOE, c.family());
        assertEquals(60, c.numExperts());
        assertEquals(4, c.topK());
        assertEquals(1408, c.expertIntermediateSize());
        assertEquals(5632, c.sharedIntermediateSize());
        assertTrue(c.sharedExpertGated());
        assertFalse(c.normTopkProb());
        assertEquals(range(0, 24), c.moeLayers());
        assertEquals("model.layers.2.mlp.shared_expert.down_proj.weight", c.family().sharedExpertWeight(2, ModelFamily.Projection.DOWN));
        assertEquals("model.layers.2.mlp.shared_expert_gate.weight", c.family().sharedExpertGateWeight(2));
    }

    @Test
    void deepseekV3() {
        MoeConfig c = parse(DEEPSEEK_V3);
        assertEquals(ModelFamily.DEEPSEEK_V3, c.family());
        assertEquals(7168, c.hiddenSize());
        assertEquals(2048, c.expertIntermediateSize());
        assertEquals(256, c.numExperts());
        assertEquals(8, c.topK());
        assertEquals(2048, c.sharedIntermediateSize(), "one shared expert of moe_intermediate_size");
        assertFalse(c.sharedExpertGated());
        assertEquals(ScoringFunction.SIGMOID, c.scoring());
        assertEquals(8, c.nGroup());
        assertEquals(4, c.topkGroup());
        assertEquals(32, c.groupSize());
        assertTrue(c.normTopkProb());
        assertEquals(2.5f, c.routedScalingFactor());
        assertTrue(c.hasSelectionBias());
        assertEquals(range(3, 61), c.moeLayers(), "first_k_dense_replace = 3 dense layers");
        assertTrue(c.isFp8Checkpoint());
        assertArrayEquals(new int[] {128, 128}, c.weightBlockSize());
        assertEquals("model.layers.3.mlp.gate.e_score_correction_bias", c.family().routerBias(3));
        assertEquals("model.layers.3.mlp.shared_experts.gate_proj.weight", c.family().sharedExpertWeight(3, ModelFamily.Projection.GATE));
        // moe_layer_freq: MoE layers are those >= first_k_dense_replace with l % freq == 0.
        MoeConfig every2 = parse(DEEPSEEK_V3, n -> {
            n.put("num_hidden_layers", 10);
            n.put("moe_layer_freq", 2);
        });
        assertEquals(Set.of(4, 6, 8), every2.moeLayers());
        MoeConfig twoShared = parse(DEEPSEEK_V3, n -> n.put("n_shared_experts", 2));
        assertEquals(4096, twoShared.sharedIntermediateSize());
        MoeConfig bf16 = parse(DEEPSEEK_V3, n -> n.remove("quantization_config"));
        assertFalse(bf16.isFp8Checkpoint());
        assertNull(bf16.weightBlockSize());
    }

    @Test
    void unsupportedModelsAndSettingsAreNamed() {
        expect(MIXTRAL_8X7B, n -> n.put("model_type", "llama"), "model_type 'llama'");
        expect(MIXTRAL_8X7B, n -> n.put("hidden_act", "gelu"), "hidden_act 'gelu'");
        expect(QWEN3_30B_A3B, n -> n.put("hidden_act", "relu"), "hidden_act 'relu'");
        expect(DEEPSEEK_V3, n -> ((ObjectNode) n.get("quantization_config")).put("quant_method", "gptq"), "quant_method 'gptq'");
        expect(DEEPSEEK_V3, n -> ((ObjectNode) n.get("quantization_config")).put("fmt", "e5m2"), "fmt 'e5m2'");
        expect(DEEPSEEK_V3, n -> n.put("topk_method", "group_limited_greedy"), "topk_method 'group_limited_greedy'");
        expect(DEEPSEEK_V3, n -> n.put("scoring_func", "tanh"), "scoring_func 'tanh'");
        expect(MIXTRAL_8X7B, n -> n.remove("hidden_size"), "'hidden_size'");
        expect(MIXTRAL_8X7B, n -> n.remove("model_type"), "'model_type'");
        expect(QWEN3_30B_A3B, n -> n.put("num_experts_per_tok", 129), "num_experts_per_tok");
        expect(QWEN3_30B_A3B, n -> n.put("moe_intermediate_size", "big"), "'moe_intermediate_size' must be an integer");
        expect(DEEPSEEK_V3, n -> n.put("n_group", 7), "n_group 7");
        expect(DEEPSEEK_V3, n -> n.put("topk_group", 9), "topk_group");
        expect(QWEN3_30B_A3B, n -> n.put("decoder_sparse_step", 0), "decoder_sparse_step");
        assertThrows(MoeConfigException.class, () -> MoeConfig.fromJson(JSON.createArrayNode()));
    }

    private static void expect(String json, Consumer<ObjectNode> edit, String fragment) {
        MoeConfigException e = assertThrows(MoeConfigException.class, () -> parse(json, edit));
        assertTrue(e.getMessage().contains(fragment), "expected '" + fragment + "' in: " + e.getMessage());
    }

    /** The generator's config.json parses back to the same configuration, for every preset and dtype. */
    @Test
    void hfJsonRoundTripsEveryPreset() {
        List<String> checked = new ArrayList<>();
        for (String preset : SyntheticCheckpoint.PRESETS.keySet()) {
            for (DType d : List.of(DType.BF16, DType.F8_E4M3)) {
                MoeConfig c = SyntheticCheckpoint.preset(preset, 3, d);
                MoeConfig back = MoeConfig.fromJson(c.toHfJson());
                assertEquals(c, back, preset + " " + d);
                assertEquals(c.summary(), back.summary(), preset + " " + d);
                checked.add(preset);
            }
        }
        assertEquals(2 * SyntheticCheckpoint.PRESETS.size(), checked.size());
        // and a published config survives the same trip
        MoeConfig ds = parse(DEEPSEEK_V3);
        assertEquals(ds, MoeConfig.fromJson(ds.toHfJson()));
        MoeConfig q = parse(QWEN3_30B_A3B, n -> {
            n.put("num_hidden_layers", 6);
            n.putArray("mlp_only_layers").add(0).add(2);
        });
        assertEquals(q.moeLayers(), MoeConfig.fromJson(q.toHfJson()).moeLayers());
    }
}
