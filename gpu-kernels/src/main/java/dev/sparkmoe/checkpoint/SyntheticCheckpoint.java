package dev.sparkmoe.checkpoint;

import dev.sparkmoe.cpu.Fp8Quantizer;
import dev.sparkmoe.model.ModelFamily;
import dev.sparkmoe.model.ModelFamily.Projection;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.model.MoeConfigException;
import dev.sparkmoe.model.ScoringFunction;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.stream.IntStream;

/**
 * Seeded random checkpoints in a family's Hugging Face layout ({@code config.json} + safetensors), for tests,
 * examples and benchmarks. Every decoder layer generated is a MoE layer. Weights are scaled so activations stay O(1)
 * through the layer: gate/up ~ N(0, 1/H), down ~ N(0, 1/I), router ~ N(0, 1/H) (logits ~ N(0, 1) for unit inputs).
 * Each tensor's values depend only on (seed, tensor name), so the same seed gives the same checkpoint whatever the
 * shard size or thread count.
 */
public final class SyntheticCheckpoint {
    /** Shard size of generated checkpoints unless told otherwise (Hugging Face's usual 5 GB). */
    public static final long DEFAULT_SHARD_BYTES = 5_000_000_000L;

    private SyntheticCheckpoint() {}

    /** Named presets: tiny shapes for tests and the real MoE shapes of published models. */
    public static final Map<String, String> PRESETS = presets();

    private static Map<String, String> presets() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("tiny-mixtral", "Mixtral layout, H 256, I 128, 8 experts, top-2");
        m.put("tiny-qwen3", "Qwen3-MoE layout, H 256, I 128, 16 experts, top-4, norm_topk_prob");
        m.put("tiny-qwen2", "Qwen2-MoE layout, H 256, I 128, 8 experts, top-2, gated shared expert 256");
        m.put("tiny-deepseek", "DeepSeek-V3 layout, H 256, I 128, 32 experts in 4 groups (keep 2), top-4, 1 shared expert, scaling 2.5");
        m.put("mixtral-8x7b", "Mixtral-8x7B: H 4096, I 14336, 8 experts, top-2");
        m.put("qwen3-30b-a3b", "Qwen3-30B-A3B: H 2048, I 768, 128 experts, top-8");
        m.put("qwen2-moe-a2.7b", "Qwen1.5/Qwen2-MoE-A2.7B: H 2048, I 1408, 60 experts, top-4, gated shared expert 5632");
        m.put("deepseek-v3", "DeepSeek-V3: H 7168, I 2048, 256 experts in 8 groups (keep 4), top-8, 1 shared expert, scaling 2.5");
        return java.util.Collections.unmodifiableMap(m);
    }

    /**
     * The config of a preset with {@code layers} decoder layers (all MoE); FP8 weights add DeepSeek's
     * 128x128 block quantization config.
     */
    public static MoeConfig preset(String name, int layers, DType weightDtype) {
        if (layers < 1) throw new MoeConfigException("layers must be >= 1, got " + layers);
        TreeSet<Integer> moe = new TreeSet<>();
        for (int l = 0; l < layers; l++) moe.add(l);
        int[] block = weightDtype == DType.F8_E4M3 ? new int[] {128, 128} : null;
        return switch (name) {
            case "tiny-mixtral" -> softmax(ModelFamily.MIXTRAL, 256, 128, 8, 2, 0, true, layers, moe, block);
            case "tiny-qwen3" -> softmax(ModelFamily.QWEN3_MOE, 256, 128, 16, 4, 0, true, layers, moe, block);
            case "tiny-qwen2" -> softmax(ModelFamily.QWEN2_MOE, 256, 128, 8, 2, 256, false, layers, moe, block);
            case "tiny-deepseek" -> deepseek(256, 128, 32, 4, 4, 2, layers, moe, block);
            case "mixtral-8x7b" -> softmax(ModelFamily.MIXTRAL, 4096, 14336, 8, 2, 0, true, layers, moe, block);
            case "qwen3-30b-a3b" -> softmax(ModelFamily.QWEN3_MOE, 2048, 768, 128, 8, 0, true, layers, moe, block);
            case "qwen2-moe-a2.7b" -> softmax(ModelFamily.QWEN2_MOE, 2048, 1408, 60, 4, 5632, false, layers, moe, block);
            case "deepseek-v3" -> deepseek(7168, 2048, 256, 8, 8, 4, layers, moe, block);
            default -> throw new MoeConfigException("unknown preset '" + name + "'; presets: " + PRESETS.keySet());
        };
    }

    private static MoeConfig softmax(ModelFamily f, int h, int i, int e, int k, int shared, boolean norm, int layers,
                                     TreeSet<Integer> moe, int[] block) {
        return new MoeConfig(f, h, i, e, k, shared, shared > 0, ScoringFunction.SOFTMAX, 1, 1, norm, 1f, false, layers, moe, block);
    }

    private static MoeConfig deepseek(int h, int i, int e, int k, int groups, int keep, int layers, TreeSet<Integer> moe, int[] block) {
        return new MoeConfig(ModelFamily.DEEPSEEK_V3, h, i, e, k, i, false, ScoringFunction.SIGMOID, groups, keep, true, 2.5f,
                true, layers, moe, block);
    }

    /**
     * Writes {@code config.json} and the MoE tensors of every MoE layer of {@code cfg} into {@code dir}.
     * Weights are {@code weightDtype} (F8_E4M3 adds {@code _scale_inv} block scales); routers are F32 when the
     * weights are F32, else BF16; DeepSeek's selection bias is F32.
     */
    public static void write(MoeConfig cfg, DType weightDtype, long seed, Path dir, long maxShardBytes) {
        write(cfg, weightDtype, seed, dir, maxShardBytes, 1.0);
    }

    /**
     * The down-projection scale that keeps a deep residual stack of these layers bounded without normalization:
     * 1/sqrt(2 x MoE layers), the depth scaling of GPT-2 / Megatron initialisations. Unscaled random layers applied as
     * {@code x + moe(x)} grow quadratically through SwiGLU and overflow fp32 after about 15 layers.
     */
    public static double depthScale(MoeConfig cfg) {
        return 1.0 / Math.sqrt(2.0 * Math.max(1, cfg.moeLayerList().size()));
    }

    /** As {@link #write(MoeConfig, DType, long, Path, long)}, with every down projection's std multiplied by {@code downScale}. */
    public static void write(MoeConfig cfg, DType weightDtype, long seed, Path dir, long maxShardBytes, double downScale) {
        if (!(downScale > 0 && downScale <= 1)) throw new CheckpointException("down-projection scale must be in (0, 1], got " + downScale);
        if (weightDtype == DType.F8_E4M3 && !cfg.isFp8Checkpoint()) {
            throw new CheckpointException("FP8 weights need a config with quantization_config.weight_block_size");
        }
        if (weightDtype != DType.F8_E4M3 && cfg.isFp8Checkpoint()) {
            throw new CheckpointException("config declares FP8 block quantization but the weights are " + weightDtype);
        }
        SafetensorsWriter w = new SafetensorsWriter();
        ModelFamily f = cfg.family();
        int h = cfg.hiddenSize(), e = cfg.numExperts(), inter = cfg.expertIntermediateSize();
        DType routerDtype = weightDtype == DType.F32 ? DType.F32 : DType.BF16;
        for (int layer : cfg.moeLayerList()) {
            addMatrix(w, f.routerWeight(layer), e, h, 1.0 / Math.sqrt(h), routerDtype, null, seed);
            if (cfg.hasSelectionBias()) {
                String name = f.routerBias(layer);
                float[] bias = normal(seed, name, e, 0.1);
                w.add(name, DType.F32, new long[] {e}, b -> b.asFloatBuffer().put(bias));
            }
            for (int x = 0; x < e; x++) {
                addExpert(w, cfg, seed, weightDtype, f.expertWeight(layer, x, Projection.GATE), f.expertWeight(layer, x, Projection.UP),
                        f.expertWeight(layer, x, Projection.DOWN), inter, downScale);
            }
            if (cfg.hasSharedExpert()) {
                addExpert(w, cfg, seed, weightDtype, f.sharedExpertWeight(layer, Projection.GATE), f.sharedExpertWeight(layer, Projection.UP),
                        f.sharedExpertWeight(layer, Projection.DOWN), cfg.sharedIntermediateSize(), downScale);
                if (cfg.sharedExpertGated()) addMatrix(w, f.sharedExpertGateWeight(layer), 1, h, 1.0 / Math.sqrt(h), routerDtype, null, seed);
            }
        }
        try {
            Files.createDirectories(dir);
        } catch (IOException ex) {
            throw new CheckpointException("cannot create " + dir + ": " + ex, ex);
        }
        w.writeDirectory(dir, maxShardBytes);
        SafetensorsWriter.writeAtomically(dir.resolve("config.json"), cfg.toHfJson().toPrettyString().getBytes(StandardCharsets.UTF_8));
    }

    private static void addExpert(SafetensorsWriter w, MoeConfig cfg, long seed, DType dtype, String gate, String up, String down, int inter,
                                  double downScale) {
        int h = cfg.hiddenSize();
        addMatrix(w, gate, inter, h, 1.0 / Math.sqrt(h), dtype, cfg.weightBlockSize(), seed);
        addMatrix(w, up, inter, h, 1.0 / Math.sqrt(h), dtype, cfg.weightBlockSize(), seed);
        addMatrix(w, down, h, inter, downScale / Math.sqrt(inter), dtype, cfg.weightBlockSize(), seed);
    }

    private static void addMatrix(SafetensorsWriter w, String name, int rows, int cols, double std, DType dtype, int[] block, long seed) {
        long[] shape = {rows, cols};
        if (dtype != DType.F8_E4M3) {
            w.add(name, dtype, shape, b -> fill(b, dtype, normal(seed, name, rows * cols, std)));
            return;
        }
        int br = block[0], bc = block[1];
        long[] scaleShape = {(rows + br - 1) / br, (cols + bc - 1) / bc};
        // Both tensors come from one draw, quantized once when the writer asks for the first of the two.
        float[] scales = new float[(int) (scaleShape[0] * scaleShape[1])];
        byte[][] codes = new byte[1][];
        Runnable quantize = () -> {
            if (codes[0] != null) return;
            codes[0] = new byte[rows * cols];
            Fp8Quantizer.quantizeWeightBlocks(normal(seed, name, rows * cols, std), rows, cols, br, bc, codes[0], scales);
        };
        w.add(name, DType.F8_E4M3, shape, b -> {
            quantize.run();
            b.put(codes[0]);
            codes[0] = new byte[0]; // written: drop the codes, keep "done"
        });
        w.add(WeightMatrix.scaleName(name), DType.F32, scaleShape, b -> {
            quantize.run();
            b.asFloatBuffer().put(scales);
        });
    }

    private static void fill(ByteBuffer b, DType dtype, float[] v) {
        switch (dtype) {
            case F32 -> b.asFloatBuffer().put(v);
            case BF16 -> { for (float x : v) b.putShort(Floats.floatToBf16(x)); }
            case F16 -> { for (float x : v) b.putShort(Floats.floatToF16(x)); }
            case F8_E4M3 -> throw new IllegalStateException("FP8 is written with its scales");
        }
    }

    /** N(0, std²) values determined by (seed, name) alone; generated in parallel chunks with independent streams. */
    static float[] normal(long seed, String name, int n, double std) {
        float[] out = new float[n];
        final int chunk = 1 << 16;
        long base = mix(seed ^ mix(name.hashCode() * 0x9E3779B97F4A7C15L + name.length()));
        IntStream.range(0, (n + chunk - 1) / chunk).parallel().forEach(c -> {
            SplittableRandom r = new SplittableRandom(mix(base + c));
            for (int i = c * chunk, end = Math.min(n, i + chunk); i < end; i++) out[i] = (float) (r.nextGaussian() * std);
        });
        return out;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
