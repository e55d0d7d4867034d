package dev.sparkmoe.cli;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.model.MoeConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/** {@code moe generate}: a seeded random checkpoint in a family's Hugging Face layout. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Writes a seeded random checkpoint (config.json + safetensors) in a model family's Hugging Face layout.",
                "Every generated layer is a MoE layer; weights are scaled so activations stay of order 1 through the layer."},
        footer = {"", "Example: moe generate --preset tiny-qwen3 --layers 2 --out /tmp/tiny-qwen3 --input-tokens 64"})
final class GenerateCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--preset", required = true, paramLabel = "NAME", completionCandidates = Presets.class,
            description = "Model shape: ${COMPLETION-CANDIDATES}.")
    String preset;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Directory to write (created; must be empty unless --force).")
    Path out;

    @Option(names = "--layers", defaultValue = "1", paramLabel = "N", description = "Decoder layers, all MoE (default: ${DEFAULT-VALUE}).")
    int layers;

    @Option(names = "--dtype", defaultValue = "bf16", converter = Converters.WeightDType.class, paramLabel = "bf16|f32|f16|fp8",
            description = "Expert weight dtype; fp8 is E4M3 with DeepSeek's 128x128 block scales (weight_scale_inv) (default: ${DEFAULT-VALUE}).")
    DType dtype;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "Random seed; the same seed gives the same weights (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--shard-size", defaultValue = "5GB", converter = Converters.ByteSize.class, paramLabel = "BYTES",
            description = "Largest shard; bigger checkpoints get model-0000k-of-0000n.safetensors and an index (default: ${DEFAULT-VALUE}).")
    long shardBytes;

    @Option(names = "--input-tokens", paramLabel = "T", description = "Also write a random N(0, 1) input of T tokens (see --input).")
    Integer inputTokens;

    @Option(names = "--input", paramLabel = "FILE.npy", description = "Where --input-tokens writes the input (default: DIR/input.npy).")
    Path input;

    @Option(names = "--input-dtype", defaultValue = "f32", paramLabel = "f32|bf16",
            description = "Input element type: float32, or bfloat16 bits stored as uint16 (default: ${DEFAULT-VALUE}).")
    String inputDtype;

    @Option(names = "--force", description = "Replace the model files (config.json, *.safetensors, index) of a non-empty DIR.")
    boolean force;

    @Override
    public Integer call() {
        if (!SyntheticCheckpoint.PRESETS.containsKey(preset)) {
            throw new ParameterException(spec.commandLine(), "unknown preset '" + preset + "'; presets: " + SyntheticCheckpoint.PRESETS.keySet());
        }
        if (layers < 1) throw new ParameterException(spec.commandLine(), "--layers must be >= 1, got " + layers);
        if (input != null && inputTokens == null) throw new ParameterException(spec.commandLine(), "--input needs --input-tokens");
        if (inputTokens != null && inputTokens < 0) throw new ParameterException(spec.commandLine(), "--input-tokens must be >= 0");
        boolean bf16Input = GenInputCommand.parseInputDtype(spec, inputDtype);
        PrintWriter err = spec.commandLine().getErr();

        MoeConfig cfg = SyntheticCheckpoint.preset(preset, layers, dtype);
        boolean created = prepareDirectory();
        long t0 = System.nanoTime();
        try {
            SyntheticCheckpoint.write(cfg, dtype, seed, out, shardBytes);
        } catch (RuntimeException | Error e) {
            cleanUp(created);
            throw e;
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        List<Path> files = modelFiles(out);
        long bytes = 0;
        for (Path f : files) bytes += size(f);
        err.printf("wrote %s (%s, %d layer%s, %s weights, seed %d) to %s: %d files, %s in %.1f s%n", preset,
                cfg.family().hfModelType(), layers, layers == 1 ? "" : "s", userName(dtype), seed, out,
                files.size(), InspectCommand.humanBytes(bytes), seconds);
        if (inputTokens != null) {
            Path in = input != null ? input : out.resolve("input.npy");
            HiddenStatesNpy.writeRandom(in, inputTokens, cfg.hiddenSize(), bf16Input, seed + 1, 1.0);
            err.printf("wrote input %s: %d tokens x %d (%s)%n", in, inputTokens, cfg.hiddenSize(), bf16Input ? "bf16 as uint16" : "float32");
        }
        return MoeCli.EXIT_OK;
    }

    static String userName(DType d) {
        return switch (d) { case F32 -> "f32"; case BF16 -> "bf16"; case F16 -> "f16"; case F8_E4M3 -> "fp8"; };
    }

    /** Makes sure {@link #out} is usable; returns true when this command created it. */
    private boolean prepareDirectory() {
        if (Files.exists(out) && !Files.isDirectory(out)) throw new CliException("--out " + out + " exists and is not a directory");
        if (!Files.exists(out)) {
            try {
                Files.createDirectories(out);
            } catch (IOException e) {
                throw new CliException("cannot create " + out + ": " + e, e);
            }
            return true;
        }
        boolean empty;
        try (Stream<Path> s = Files.list(out)) {
            empty = s.findAny().isEmpty();
        } catch (IOException e) {
            throw new CliException("cannot list " + out + ": " + e, e);
        }
        if (empty) return false;
        if (!force) {
            throw new CliException("--out " + out + " is not empty; choose a new directory, or pass --force to replace its model files");
        }
        // Stale shards or index from an earlier model would be mixed into the new one: remove them first.
        for (Path f : modelFiles(out)) {
            try {
                Files.delete(f);
            } catch (IOException e) {
                throw new CliException("cannot remove " + f + ": " + e, e);
            }
        }
        return false;
    }

    /** After a failed write: remove what was written (the whole directory when this command created it). */
    private void cleanUp(boolean created) {
        try {
            if (created) {
                try (Stream<Path> s = Files.walk(out)) {
                    for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
                }
            } else {
                for (Path f : modelFiles(out)) Files.deleteIfExists(f);
            }
        } catch (IOException | RuntimeException ignored) {
            // best effort: the error that got us here is the one to report
        }
    }

    /** The files of a checkpoint in {@code dir}: config.json, the index and every *.safetensors. */
    static List<Path> modelFiles(Path dir) {
        List<Path> files = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir)) {
            s.filter(p -> {
                String n = p.getFileName().toString();
                return n.equals("config.json") || n.equals(Checkpoint.INDEX) || n.endsWith(".safetensors");
            }).sorted().forEach(files::add);
        } catch (IOException e) {
            throw new CliException("cannot list " + dir + ": " + e, e);
        }
        return files;
    }

    static long size(Path f) {
        try {
            return Files.size(f);
        } catch (IOException e) {
            throw new CliException("cannot stat " + f + ": " + e, e);
        }
    }

    /** The preset names, for help and completion. */
    static final class Presets implements Iterable<String> {
        @Override public java.util.Iterator<String> iterator() { return SyntheticCheckpoint.PRESETS.keySet().iterator(); }
    }
}
