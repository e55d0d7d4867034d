package dev.sparkmoe.cli;

import dev.sparkmoe.model.MoeConfig;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code moe gen-input}: a random batch of hidden states for {@code moe run}. */
@Command(name = "gen-input", mixinStandardHelpOptions = true,
        description = "Writes random N(0, std^2) hidden states [tokens, hidden] as .npy (float32, or bfloat16 bits as uint16).")
final class GenInputCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    static final class Width {
        @Option(names = "--model", paramLabel = "DIR", description = "Take the hidden size from this checkpoint's config.json.")
        Path model;

        @Option(names = "--hidden", paramLabel = "H", description = "Hidden size.")
        Integer hidden;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Width width;

    @Option(names = "--tokens", required = true, paramLabel = "T", description = "Rows (tokens).")
    int tokens;

    @Option(names = "--out", required = true, paramLabel = "FILE.npy", description = "File to write.")
    Path out;

    @Option(names = "--dtype", defaultValue = "f32", paramLabel = "f32|bf16",
            description = "float32 ('<f4'), or bfloat16 bits stored as uint16 ('<u2') (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(names = "--seed", defaultValue = "1", paramLabel = "S", description = "Random seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--std", defaultValue = "1.0", paramLabel = "X", description = "Standard deviation (default: ${DEFAULT-VALUE}).")
    double std;

    @Override
    public Integer call() {
        boolean bf16 = parseInputDtype(spec, dtype);
        if (tokens < 0) throw new ParameterException(spec.commandLine(), "--tokens must be >= 0, got " + tokens);
        if (!(std > 0) || Double.isInfinite(std)) throw new ParameterException(spec.commandLine(), "--std must be a positive number, got " + std);
        int hidden;
        if (width.model != null) {
            hidden = MoeConfig.read(width.model.resolve("config.json")).hiddenSize();
        } else {
            hidden = width.hidden;
            if (hidden < 1) throw new ParameterException(spec.commandLine(), "--hidden must be >= 1, got " + hidden);
        }
        HiddenStatesNpy.writeRandom(out, tokens, hidden, bf16, seed, std);
        spec.commandLine().getErr().printf("wrote %s: %d tokens x %d (%s)%n", out, tokens, hidden, bf16 ? "bf16 as uint16" : "float32");
        return MoeCli.EXIT_OK;
    }

    /** true for bf16, false for f32; anything else is a usage error. */
    static boolean parseInputDtype(CommandSpec spec, String s) {
        return switch (s.toLowerCase()) {
            case "f32", "fp32", "float32" -> false;
            case "bf16", "bfloat16" -> true;
            default -> throw new ParameterException(spec.commandLine(), "input dtype '" + s + "' is not one of f32, bf16");
        };
    }
}
