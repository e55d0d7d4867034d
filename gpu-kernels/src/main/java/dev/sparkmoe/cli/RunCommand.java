package dev.sparkmoe.cli;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.engine.Device;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngines;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.npy.NpyWriter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code moe run}: one MoE layer of a checkpoint on a batch of hidden states. */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = {"Runs MoE layer L of a checkpoint on hidden states [T, hidden] and writes float32 [T, hidden] (no residual).",
                "Input: .npy, float32 ('<f4') or bfloat16 bits stored as uint16 ('<u2'), C order. NaN or Inf in the input is "
                        + "rejected with the token row named. The output is written to a temporary file beside Y.npy and renamed, "
                        + "so a failed run never leaves a partial file. Device, timing and tokens/s go to stderr."},
        footer = {"", "Example: moe run --model /tmp/tiny-qwen3 --layer 0 --input /tmp/tiny-qwen3/input.npy --output /tmp/y.npy"})
final class RunCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Checkpoint directory (config.json + safetensors).")
    Path model;

    @Option(names = "--layer", required = true, paramLabel = "L", description = "Decoder layer index; must be a MoE layer.")
    int layer;

    @Option(names = "--input", required = true, paramLabel = "X.npy", description = "Hidden states [T, hidden].")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "Y.npy", description = "Where to write the float32 output [T, hidden].")
    Path output;

    @Option(names = "--device", defaultValue = "auto", converter = Converters.DeviceName.class, paramLabel = "auto|cpu|gpu",
            description = "auto: the GPU when usable, else the CPU (default: ${DEFAULT-VALUE}).")
    Device device;

    @Option(names = "--precision", defaultValue = "native", converter = Converters.PrecisionName.class, paramLabel = "native|fp8",
            description = "native: fp32 activations, weights as stored; fp8: the E4M3 recipe with 1x128 activation and 128x128 weight scales (default: ${DEFAULT-VALUE}).")
    Precision precision;

    @Option(names = "--threads", defaultValue = "0", paramLabel = "N", description = "CPU threads; 0 = all processors (default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--gpu-id", defaultValue = "0", paramLabel = "ORDINAL", description = "CUDA device ordinal (default: ${DEFAULT-VALUE}).")
    int gpuId;

    @Override
    public Integer call() {
        if (threads < 0) throw new ParameterException(spec.commandLine(), "--threads must be >= 0, got " + threads);
        if (gpuId < 0) throw new ParameterException(spec.commandLine(), "--gpu-id must be >= 0, got " + gpuId);
        PrintWriter err = spec.commandLine().getErr();
        // Cheap checks first, so a bad path or input fails before any weight is loaded.
        checkOutputPath(output);
        long t0 = System.nanoTime();
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            MoeConfig c = ckpt.config();
            c.requireMoeLayer(layer);
            HiddenStatesNpy.Batch x = HiddenStatesNpy.read(input, c.hiddenSize());
            float[] out = new float[x.values().length];
            MoeEngine.checkInput(c, x.values(), x.tokens(), out);
            try (MoeEngine engine = MoeEngines.open(ckpt, layer, device, precision, threads, gpuId)) {
                long t1 = System.nanoTime();
                if (x.tokens() > 0) engine.forward(x.values(), x.tokens(), out);
                long t2 = System.nanoTime();
                NpyWriter.writeFloat32(output, new long[] {x.tokens(), c.hiddenSize()}, out);
                double load = (t1 - t0) / 1e9, fwd = (t2 - t1) / 1e9;
                err.printf("moe run: %s layer %d (hidden %d, %d experts, top-%d), precision %s%n", c.family().hfModelType(), layer,
                        c.hiddenSize(), c.numExperts(), c.topK(), precision.name().toLowerCase());
                err.printf("device: %s%n", engine.deviceDescription());
                err.printf("tokens: %d, load %.3f s, forward %.3f s, %.1f tokens/s%n", x.tokens(), load, fwd,
                        fwd > 0 ? x.tokens() / fwd : 0.0);
                err.printf("wrote %s: float32 [%d, %d]%n", output, x.tokens(), c.hiddenSize());
            }
        }
        return MoeCli.EXIT_OK;
    }

    /** The output must go into an existing, writable directory and must not name a directory. */
    static void checkOutputPath(Path output) {
        Path parent = output.toAbsolutePath().getParent();
        if (Files.isDirectory(output)) throw new CliException("--output " + output + " is a directory; name a file");
        if (!Files.isDirectory(parent)) throw new CliException("--output " + output + ": directory " + parent + " does not exist");
        if (!Files.isWritable(parent)) throw new CliException("--output " + output + ": directory " + parent + " is not writable");
    }
}
