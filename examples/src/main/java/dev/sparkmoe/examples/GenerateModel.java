package dev.sparkmoe.examples;

import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.model.MoeConfig;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** Writes a seeded synthetic checkpoint (Hugging Face layout) for the examples; no Spark needed. */
@Command(name = "generate-model", mixinStandardHelpOptions = true,
        description = "Writes a seeded random MoE checkpoint (config.json + safetensors) from a preset.")
public final class GenerateModel implements Callable<Integer> {
    @Option(names = "--preset", defaultValue = "tiny-deepseek", description = "one of ${COMPLETION-CANDIDATES} (default ${DEFAULT-VALUE})",
            completionCandidates = Presets.class)
    String preset;

    @Option(names = "--layers", defaultValue = "2", description = "decoder layers, all MoE (default ${DEFAULT-VALUE})")
    int layers;

    @Option(names = "--dtype", defaultValue = "bf16", description = "weight dtype: f32, bf16, f16, fp8 (default ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--seed", defaultValue = "1", description = "random seed (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--output", required = true, description = "checkpoint directory to write")
    Path output;

    @Option(names = "--depth-scaled-init", description = "scale down projections by 1/sqrt(2 x layers), so that a deep "
            + "residual stack (x + moe(x) per layer, no normalization) stays bounded instead of overflowing")
    boolean depthScaled;

    static final class Presets extends java.util.ArrayList<String> {
        Presets() { super(SyntheticCheckpoint.PRESETS.keySet()); }
    }

    @Override public Integer call() {
        DType d = DType.fromUserName(dtype);
        MoeConfig cfg = SyntheticCheckpoint.preset(preset, layers, d);
        long t0 = System.nanoTime();
        SyntheticCheckpoint.write(cfg, d, seed, output, SyntheticCheckpoint.DEFAULT_SHARD_BYTES,
                depthScaled ? SyntheticCheckpoint.depthScale(cfg) : 1.0);
        System.out.printf("wrote %s (%s, %d layers, %s) to %s in %.1f s%n", preset, cfg.family().hfModelType(), layers,
                d.name(), output, (System.nanoTime() - t0) / 1e9);
        return 0;
    }

    public static void main(String[] args) { System.exit(new CommandLine(new GenerateModel()).execute(args)); }
}
