package dev.sparkmoe.cli;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.checkpoint.SafetensorsFile;
import dev.sparkmoe.model.MoeConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/** {@code moe inspect}: what a checkpoint holds, as this library reads it. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = {"Describes a checkpoint: family, layers, MoE layers, experts, routing, shapes, dtypes, bytes per MoE layer, shards.",
                "Loads one MoE layer's weights (the first, or --layer) to check their names, shapes and dtypes against config.json."})
final class InspectCommand implements Callable<Integer> {
    private static final int MAX_SHARDS_LISTED = 8;

    @Spec CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Checkpoint directory.")
    Path model;

    @Option(names = "--layer", paramLabel = "L", description = "The MoE layer to check and measure (default: the first).")
    Integer layer;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            MoeConfig c = ckpt.config();
            if (c.moeLayerList().isEmpty()) throw new CliException(model + ": config.json declares no MoE layer");
            int checked = layer != null ? layer : c.moeLayerList().get(0);
            c.requireMoeLayer(checked);
            MoeLayerWeights w = MoeLayerWeights.load(ckpt, checked);

            line(out, "model", model.toString());
            line(out, "family", c.family().hfModelType());
            line(out, "layers", c.numLayers() + " decoder layers; MoE layers " + c.describeLayers() + " (" + c.moeLayerList().size() + ")");
            StringBuilder routing = new StringBuilder(c.scoring().name().toLowerCase(Locale.ROOT)).append(" scores, ")
                    .append(c.numExperts()).append(" routed experts, top-").append(c.topK());
            if (c.nGroup() > 1) routing.append(", ").append(c.nGroup()).append(" groups (keep ").append(c.topkGroup()).append(')');
            routing.append(", norm_topk_prob ").append(c.normTopkProb());
            if (c.routedScalingFactor() != 1f) routing.append(", routed_scaling_factor ").append(c.routedScalingFactor());
            if (c.hasSelectionBias()) routing.append(", selection bias e_score_correction_bias");
            line(out, "routing", routing.toString());
            int h = c.hiddenSize(), i = c.expertIntermediateSize(), s = c.sharedIntermediateSize();
            line(out, "experts", "hidden " + h + ", intermediate " + i + ": router [" + c.numExperts() + ", " + h + "], gate/up ["
                    + i + ", " + h + "], down [" + h + ", " + i + "]");
            line(out, "shared", !c.hasSharedExpert() ? "none" : "intermediate " + s + ": gate/up [" + s + ", " + h + "], down [" + h + ", " + s + "]"
                    + (c.sharedExpertGated() ? ", scaled by sigmoid(shared_expert_gate . x)" : ", weight 1"));
            line(out, "weights", expertDtypes(w) + " experts" + (c.isFp8Checkpoint()
                    ? " with " + c.weightBlockSize()[0] + "x" + c.weightBlockSize()[1] + " block scales (_scale_inv)" : "")
                    + ", router " + w.router().dtype());

            Map<String, Integer> dtypes = new TreeMap<>();
            Map<String, long[]> shards = new TreeMap<>(); // file -> {tensors, bytes}
            long totalBytes = 0;
            for (String name : ckpt.tensorNames()) {
                String dtype = ckpt.dtypeName(name);
                boolean usable = java.util.Arrays.stream(DType.values()).anyMatch(t -> t.safetensorsName().equals(dtype));
                dtypes.merge(usable ? dtype : dtype + " (not used by this library)", 1, Integer::sum);
                long[] sh = shards.computeIfAbsent(ckpt.fileOf(name), k -> new long[2]);
                sh[0]++;
                if (usable) {
                    SafetensorsFile.Entry e = ckpt.entry(name);
                    sh[1] += e.end() - e.begin();
                    totalBytes += e.end() - e.begin();
                }
            }
            StringBuilder d = new StringBuilder();
            dtypes.forEach((t, n) -> d.append(d.length() == 0 ? "" : ", ").append(t).append(" x ").append(n));
            line(out, "dtypes", d.toString());
            line(out, "per MoE layer", humanBytes(w.storedBytes()) + " stored (" + w.storedBytes() + " bytes; layer " + checked
                    + " checked: every tensor present with the config's shape)");
            boolean indexed = java.nio.file.Files.isRegularFile(model.resolve(Checkpoint.INDEX));
            line(out, "shards", shards.size() + (indexed ? " (indexed by " + Checkpoint.INDEX + ")" : ""));
            int listed = 0;
            for (Map.Entry<String, long[]> e : shards.entrySet()) {
                // Real checkpoints have up to a few hundred shards: show the first ones and count the rest.
                if (listed++ == MAX_SHARDS_LISTED) {
                    out.printf("  ... and %d more%n", shards.size() - MAX_SHARDS_LISTED);
                    break;
                }
                out.printf("  %-40s %8d tensors  %s%n", e.getKey(), e.getValue()[0], humanBytes(e.getValue()[1]));
            }
            line(out, "total", humanBytes(totalBytes) + " of tensor data in " + ckpt.tensorNames().size() + " tensors");
        }
        return MoeCli.EXIT_OK;
    }

    private static String expertDtypes(MoeLayerWeights w) {
        Map<DType, Integer> m = new EnumMap<>(DType.class);
        for (MoeLayerWeights.ExpertWeights x : w.experts()) {
            m.merge(x.gate().dtype(), 1, Integer::sum);
            m.merge(x.up().dtype(), 1, Integer::sum);
            m.merge(x.down().dtype(), 1, Integer::sum);
        }
        return String.join("/", m.keySet().stream().map(DType::name).toList());
    }

    private static void line(PrintWriter out, String key, String value) {
        out.printf("%-14s %s%n", key, value);
    }

    static String humanBytes(long b) {
        if (b < 1024) return b + " B";
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = b;
        int u = -1;
        do {
            v /= 1024;
            u++;
        } while (v >= 1024 && u < units.length - 1);
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }
}
