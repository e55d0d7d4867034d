package dev.sparkmoe.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.cuda.Cuda;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.engine.HostMoeStack;
import dev.sparkmoe.engine.MoeStack;
import dev.sparkmoe.gpu.ForwardMode;
import dev.sparkmoe.gpu.GpuEngineSettings;
import dev.sparkmoe.gpu.GpuMoeEngine;
import dev.sparkmoe.gpu.GpuMoeStack;
import dev.sparkmoe.model.MoeConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code moe bench}: times whole MoE layers of real shapes on the GPU (weights generated on the device), and the same
 * layer through the PyTorch peer script in the same run, on the same GPU.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Times MoE layers of real model shapes on the GPU: per shape, precision and token count the median layer time "
                + "(CUDA events around one layer = one CUDA graph replay, after warm-up, inputs rotated so L2 does not hold them), "
                + "effective TFLOPS (6*H*I per routed token-expert pair + router 2*H*E + shared 6*H*Is per token), effective "
                + "weight-read GB/s (weights of the experts actually used), and the host time to queue the layer; then the "
                + "same with the layer queued behind a 200-us busy kernel before each start event, so the events hold its "
                + "device time alone (dev_ms, dev_wGB/s: layers back to back, as in a model; ms(med) is an isolated call, "
                + "which also waits for the host to submit the graph). With --peer, the same layer through PyTorch's grouped "
                + "GEMMs in the same run, and the ratio (to ms(med): the peer's eager launches are timed the same way)."},
        footer = {"", "Example: moe bench --shapes deepseek-v3 --precision fp8 --tokens 16,4096 --peer 'python3 scripts/bench/torch_moe_layer.py'"})
final class BenchCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--shapes", split = ",", defaultValue = "mixtral-8x7b,qwen3-30b-a3b,deepseek-v3", paramLabel = "PRESET",
            description = "SyntheticCheckpoint presets to time (default: ${DEFAULT-VALUE}).")
    List<String> shapes;

    @Option(names = "--precision", split = ",", defaultValue = "native,fp8", paramLabel = "native|fp8",
            description = "Precisions (default: ${DEFAULT-VALUE}).")
    List<String> precisions;

    @Option(names = "--tokens", split = ",", defaultValue = "16,512,4096,32768", paramLabel = "T", description = "Token counts (default: ${DEFAULT-VALUE}).")
    List<Integer> tokens;

    @Option(names = "--runs", defaultValue = "20", description = "Timed runs per point; the median is reported (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--warmup", defaultValue = "5", description = "Untimed runs first (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--warmup-ms", defaultValue = "300", paramLabel = "MS",
            description = "Before each point, untimed runs for at least this long, so the host's launch path is JIT-compiled "
                    + "(interpreted, a graph launch took 13-15 us instead of ~3: the first shape's small layers paid it) "
                    + "(default: ${DEFAULT-VALUE}).")
    int warmupMillis;

    @Option(names = "--rotations", defaultValue = "4", description = "Distinct device-resident inputs used in turn (default: ${DEFAULT-VALUE}).")
    int rotations;

    @Option(names = "--gpu-id", defaultValue = "0", paramLabel = "ORDINAL", description = "CUDA device ordinal (default: ${DEFAULT-VALUE}).")
    int gpuId;

    @Option(names = "--seed", defaultValue = "1", description = "Seed of the generated weights and inputs (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--peer", paramLabel = "COMMAND",
            description = "Command of the PyTorch peer (e.g. 'python3 scripts/bench/torch_moe_layer.py'); it is given --shape, "
                    + "--precision, --tokens, --runs, --warmup, --rotations and prints one JSON object per token count.")
    String peer;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write every result as JSON to FILE.")
    Path json;

    @Option(names = "--profile", description = "Also time each stage of the layer (kernels launched one by one with events between "
            + "stages, not as a graph) and print the medians.")
    boolean profile;

    @Option(names = "--variant", paramLabel = "KEY=VALUE[;KEY=VALUE...]",
            description = "Repeatable: also time every point with an engine opened under these system properties (e.g. "
                    + "'sparkmoe.gpu.sharedExpertStream=false' for the previous production path), in the same run on the same "
                    + "GPU, and print the ratio variant ms / ours.")
    List<String> variants;

    @Option(names = "--threads", split = ",", paramLabel = "N",
            description = "Engine-only throughput instead of layer times: N caller threads share one engine and call forward() on "
                    + "fp32 host batches (host copies, transfers and the layer included), for each forward mode of --modes.")
    List<Integer> threads;

    @Option(names = "--modes", split = ",", defaultValue = "serial,pipelined,overlapped", paramLabel = "MODE",
            description = "With --threads: sparkmoe.gpu.forwardMode values to compare (default: ${DEFAULT-VALUE}).")
    List<String> modes;

    @Option(names = "--batch-tokens", defaultValue = "8192", description = "With --threads: tokens per call (default: ${DEFAULT-VALUE}).")
    int batchTokens;

    @Option(names = "--seconds", defaultValue = "3", description = "With --threads: seconds per measurement (default: ${DEFAULT-VALUE}).")
    double seconds;

    @Option(names = "--stack", defaultValue = "0", paramLabel = "L",
            description = "With --threads: also an L-layer stack (residual), device-resident vs through host memory, in the engine's "
                    + "default forward mode (0 = none; default: ${DEFAULT-VALUE}).")
    int stack;

    private static final ObjectMapper JSON = new ObjectMapper();
    /**
     * dev_ms: a kernel keeps the stream busy this long before each run's start event, so the layer's graph is already
     * queued when the GPU reaches it (its device time alone; ms(med) also holds the host's submission of an isolated call).
     */
    static final int QUEUE_MICROS = 200;

    @Override
    public Integer call() {
        if (runs < 1 || warmup < 0 || warmupMillis < 0 || rotations < 1) {
            throw new ParameterException(spec.commandLine(), "--runs >= 1, --warmup >= 0, --warmup-ms >= 0, --rotations >= 1");
        }
        for (int t : tokens) if (t < 1) throw new ParameterException(spec.commandLine(), "--tokens must be positive, got " + t);
        Map<String, Map<String, String>> variantProps = new java.util.LinkedHashMap<>();
        if (variants != null) {
            for (String v : variants) {
                try {
                    variantProps.put(v, parseVariant(v));
                } catch (IllegalArgumentException e) {
                    throw new ParameterException(spec.commandLine(), "--variant: " + e.getMessage());
                }
            }
        }
        GpuMoeEngine.unavailableReason(gpuId).ifPresent(why -> { throw new CliException("moe bench needs the GPU engine: " + why); });
        PrintWriter out = spec.commandLine().getOut();
        ArrayNode all = JSON.createArrayNode();
        if (threads != null) {
            throughput(out, all);
            writeJson(all);
            return 0;
        }
        out.printf("moe bench: driver %d, %d timed runs (median) after %d warm-up and >= %d ms of untimed runs per point, %d rotating inputs%n",
                Cuda.driverVersion(), runs, warmup, warmupMillis, rotations);
        out.println(header());
        out.flush();
        for (String shape : shapes) {
            for (String ps : precisions) {
                Precision p = Precision.parse(ps);
                MoeConfig c = SyntheticCheckpoint.preset(shape, 1, p == Precision.FP8 ? DType.F8_E4M3 : DType.BF16);
                Map<Integer, Double> peerMs = peer == null ? Map.of() : runPeer(shape, ps, out);
                Map<Integer, ObjectNode> rows = new HashMap<>();
                try (GpuMoeEngine engine = GpuMoeEngine.openSynthetic(c, p, gpuId, seed)) {
                    for (int t : tokens) {
                        warmUp(engine, t);
                        float[] ms = engine.timeLayer(t, warmup, runs, rotations, seed + t, 0);
                        int[] counts = engine.lastExpertCounts();
                        long[] enqueue = engine.lastEnqueueNanos();
                        double deviceMs = median(engine.timeLayer(t, warmup, runs, rotations, seed + t, QUEUE_MICROS));
                        ObjectNode r = result(c, shape, ps, t, ms, deviceMs, counts, enqueue, engine, peerMs.get(t));
                        r.put("device_queue_overruns", engine.lastQueueOverruns());
                        int fallback = engine.lastRouterFallbackTokens(t);
                        if (fallback >= 0) r.put("router_fallback_tokens", fallback);
                        r.put("device", engine.deviceDescription());
                        rows.put(t, r);
                        if (profile) {
                            Map<String, Double> stages = engine.profileStages(t, Math.max(3, runs / 2), seed + 7 * t);
                            ObjectNode st = r.putObject("stages_ms");
                            StringBuilder b = new StringBuilder("    stages (ms):");
                            stages.forEach((k, v) -> { st.put(k, v); b.append(String.format(Locale.ROOT, " %s %.3f |", k, v)); });
                            all.add(r);
                            out.println(row(r));
                            printNotes(out, r);
                            out.println(b);
                        } else {
                            all.add(r);
                            out.println(row(r));
                            printNotes(out, r);
                        }
                        out.flush();
                    }
                }
                for (Map.Entry<String, Map<String, String>> v : variantProps.entrySet()) timeVariant(out, c, p, v.getKey(), v.getValue(), rows);
            }
        }
        writeJson(all);
        return 0;
    }

    /**
     * The system properties of a {@code --variant}: {@code KEY=VALUE[;KEY=VALUE...]}; a {@code sparkmoe.gpu.*} key must be
     * a declared GPU engine setting (a typo would otherwise time the defaults under another name).
     */
    static Map<String, String> parseVariant(String variant) {
        String gpuPrefix = GpuEngineSettings.GRAPHS.key().substring(0, GpuEngineSettings.GRAPHS.key().lastIndexOf('.') + 1);
        java.util.Set<String> known = new java.util.HashSet<>();
        for (dev.sparkmoe.config.Setting<?> s : dev.sparkmoe.config.Settings.all()) known.add(s.key());
        Map<String, String> props = new java.util.LinkedHashMap<>();
        for (String kv : variant.split(";")) {
            int eq = kv.indexOf('=');
            String key = eq > 0 ? kv.substring(0, eq).trim() : "";
            if (key.isEmpty()) throw new IllegalArgumentException("expected KEY=VALUE[;KEY=VALUE...], got '" + variant + "'");
            if (key.startsWith(gpuPrefix) && !known.contains(key)) {
                throw new IllegalArgumentException("'" + key + "' is not a GPU engine setting (see docs/configuration.md)");
            }
            props.put(key, kv.substring(eq + 1).trim());
        }
        return props;
    }

    /**
     * Untimed layer runs of {@code tokens} for at least {@code --warmup-ms} (JIT compilation of the launch path, GPU
     * clocks), in batches that double, so that the inputs each timeLayer call makes are made a few times, not per 10 runs.
     */
    private void warmUp(GpuMoeEngine engine, int tokens) {
        long until = System.nanoTime() + warmupMillis * 1_000_000L;
        for (int batch = 10; System.nanoTime() < until; batch = Math.min(2 * batch, 10_000)) {
            engine.timeLayer(tokens, 0, batch, rotations, seed + tokens, 0);
        }
    }

    /** Times every token count with an engine opened under the variant's system properties; adds the figures to {@code rows}. */
    private void timeVariant(PrintWriter out, MoeConfig c, Precision p, String variant, Map<String, String> props,
                             Map<Integer, ObjectNode> rows) {
        Map<String, String> before = new HashMap<>();
        props.forEach((k, v) -> { before.put(k, System.getProperty(k)); System.setProperty(k, v); });
        GpuMoeEngine engine;
        try {
            engine = GpuMoeEngine.openSynthetic(c, p, gpuId, seed);
        } finally {
            before.forEach((k, v) -> { if (v == null) System.clearProperty(k); else System.setProperty(k, v); });
        }
        try (engine) {
            for (int t : tokens) {
                warmUp(engine, t);
                double med = median(engine.timeLayer(t, warmup, runs, rotations, seed + t, 0));
                double dev = median(engine.timeLayer(t, warmup, runs, rotations, seed + t, QUEUE_MICROS));
                ObjectNode r = rows.get(t);
                ObjectNode vs = r.has("variants") ? (ObjectNode) r.get("variants") : r.putObject("variants");
                ObjectNode v = vs.putObject(variant).put("median_ms", med).put("variant_over_ours", med / r.get("median_ms").asDouble())
                        .put("device_ms", dev).put("device_variant_over_ours", dev / r.get("device_ms").asDouble())
                        .put("device", engine.deviceDescription());
                out.printf(Locale.ROOT, "    variant [%s] %s %s %d tokens: %.3f ms (ours %.3f ms: %.3fx), device %.3f ms (ours %.3f ms: %.3fx)%n",
                        variant, r.get("shape").asText(), r.get("precision").asText(), t, med, r.get("median_ms").asDouble(),
                        med / r.get("median_ms").asDouble(), dev, r.get("device_ms").asDouble(), dev / r.get("device_ms").asDouble());
                if (profile) {
                    ObjectNode st = v.putObject("stages_ms");
                    StringBuilder b = new StringBuilder("      variant stages (ms):");
                    engine.profileStages(t, Math.max(3, runs / 2), seed + 7 * t).forEach((k, ms) -> {
                        st.put(k, ms);
                        b.append(String.format(Locale.ROOT, " %s %.3f |", k, ms));
                    });
                    out.println(b);
                }
                out.flush();
            }
        }
    }

    private void writeJson(ArrayNode all) {
        if (json == null) return;
        try {
            Files.writeString(json, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(all), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new CliException("cannot write " + json + ": " + e.getMessage(), e);
        }
    }

    /** --threads: engine-only tokens/s per forward mode and thread count; with --stack, device-resident vs host stacks. */
    private void throughput(PrintWriter out, ArrayNode all) {
        for (int t : threads) if (t < 1) throw new ParameterException(spec.commandLine(), "--threads must be positive, got " + t);
        if (batchTokens < 1 || seconds <= 0 || stack < 0) throw new ParameterException(spec.commandLine(), "--batch-tokens >= 1, --seconds > 0, --stack >= 0");
        for (String m : modes) ForwardMode.parse(m);
        out.printf("moe bench --threads: driver %d, %d-token fp32 batches, %.1f s per point%n", Cuda.driverVersion(), batchTokens, seconds);
        out.printf(Locale.ROOT, "%-14s %-5s %-22s %7s %7s %8s %12s%n", "shape", "prec", "path", "threads", "calls", "seconds", "tokens/s");
        out.flush();
        try {
            for (String shape : shapes) {
                for (String ps : precisions) {
                    Precision p = Precision.parse(ps);
                    MoeConfig c = SyntheticCheckpoint.preset(shape, 1, p == Precision.FP8 ? DType.F8_E4M3 : DType.BF16);
                    float[][] inputs = EngineThroughput.randomInputs(4, Math.multiplyExact(batchTokens, c.hiddenSize()), seed);
                    for (String m : modes) {
                        try (GpuMoeEngine engine = openWithMode(c, p, m, seed)) {
                            MoeStack one = MoeStack.of(List.of(engine), false);
                            for (int t : threads) throughputRow(out, all, shape, ps, "engine " + m, EngineThroughput.measure(one, inputs, batchTokens, t, seconds));
                        }
                    }
                    if (stack > 0) {
                        List<GpuMoeEngine> layers = new ArrayList<>();
                        try {
                            for (int l = 0; l < stack; l++) layers.add(openWithMode(c, p, null, seed + 1000L * l));
                            MoeStack device = GpuMoeStack.of(layers, true), host = new HostMoeStack(layers, true);
                            for (int t : threads) {
                                throughputRow(out, all, shape, ps, "stack" + stack + " device", EngineThroughput.measure(device, inputs, batchTokens, t, seconds));
                                throughputRow(out, all, shape, ps, "stack" + stack + " host", EngineThroughput.measure(host, inputs, batchTokens, t, seconds));
                            }
                        } finally {
                            for (GpuMoeEngine e : layers) e.close();
                        }
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CliException("interrupted", e);
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.BrokenBarrierException e) {
            throw new CliException("throughput run failed: " + e.getCause(), e);
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new CliException("throughput run failed: " + e, e);
        }
    }

    /** An engine of random weights in forward mode {@code mode} (null: the setting's default). */
    private GpuMoeEngine openWithMode(MoeConfig c, Precision p, String mode, long weightSeed) {
        String key = GpuEngineSettings.FORWARD_MODE.key();
        String before = System.getProperty(key);
        if (mode != null) System.setProperty(key, mode);
        try {
            return GpuMoeEngine.openSynthetic(c, p, gpuId, weightSeed);
        } finally {
            if (before == null) System.clearProperty(key); else System.setProperty(key, before);
        }
    }

    private static void throughputRow(PrintWriter out, ArrayNode all, String shape, String precision, String path, EngineThroughput.Result r) {
        ObjectNode n = JSON.createObjectNode();
        n.put("shape", shape).put("precision", precision).put("path", path).put("threads", r.threads()).put("batch_tokens", r.batchTokens())
                .put("calls", r.calls()).put("seconds", r.seconds()).put("tokens_per_s", r.tokensPerSecond());
        all.add(n);
        out.printf(Locale.ROOT, "%-14s %-5s %-22s %7d %7d %8.2f %12.0f%n", shape, precision, path, r.threads(), r.calls(), r.seconds(), r.tokensPerSecond());
        out.flush();
    }

    /** FLOPs of one layer call as the issue counts them. */
    static double flops(MoeConfig c, int tokens) {
        double h = c.hiddenSize(), i = c.expertIntermediateSize();
        double perPair = 2 * h * (2 * i) + 2 * i * h;
        double shared = c.hasSharedExpert() ? 6 * h * c.sharedIntermediateSize() : 0;
        return tokens * (c.topK() * perPair + 2 * h * c.numExperts() + shared);
    }

    /** Weight bytes a call must read at least once: the experts that got tokens, the shared expert, the router. */
    static double weightBytes(MoeConfig c, Precision p, int usedExperts) {
        double h = c.hiddenSize(), i = c.expertIntermediateSize();
        double esz = p == Precision.FP8 ? 1 : 2;
        double scale = p == Precision.FP8 ? 4.0 / (128 * 128) : 0;
        double expert = 3 * h * i * (esz + scale);
        double shared = c.hasSharedExpert() ? 3 * h * c.sharedIntermediateSize() * (esz + scale) : 0;
        return usedExperts * expert + shared + 4 * h * c.numExperts();
    }

    static double median(float[] v) {
        float[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    }

    private static ObjectNode result(MoeConfig c, String shape, String precision, int t, float[] ms, double deviceMs, int[] counts,
                                     long[] enqueueNanos, GpuMoeEngine engine, Double peerMs) {
        double med = median(ms);
        int used = 0;
        for (int n : counts) if (n > 0) used++;
        float[] enq = new float[enqueueNanos.length];
        for (int i = 0; i < enq.length; i++) enq[i] = enqueueNanos[i] / 1000f;
        ObjectNode r = JSON.createObjectNode();
        r.put("shape", shape).put("precision", precision).put("tokens", t).put("median_ms", med);
        float min = Float.MAX_VALUE;
        for (float m : ms) min = Math.min(min, m);
        r.put("min_ms", min);
        r.put("tflops", flops(c, t) / (med * 1e-3) / 1e12);
        double bytes = weightBytes(c, Precision.parse(precision), used);
        r.put("weight_gbps", bytes / (med * 1e-3) / 1e9);
        r.put("device_ms", deviceMs);
        r.put("device_weight_gbps", bytes / (deviceMs * 1e-3) / 1e9);
        r.put("experts_used", used);
        r.put("enqueue_us", median(enq));
        if (peerMs != null) {
            r.put("torch_ms", peerMs);
            r.put("torch_over_ours", peerMs / med);
        }
        return r;
    }

    /**
     * A point's notes: how many tokens the certified router sent to its fp64 fallback, and when some dev_ms runs may hold
     * host time (the host queued the layer slower than the busy kernel ran).
     */
    private void printNotes(PrintWriter out, JsonNode r) {
        if (r.has("router_fallback_tokens")) {
            out.printf(Locale.ROOT, "    router: %d of %d tokens not certified, routed again from fp64 logits%n",
                    r.get("router_fallback_tokens").asInt(), r.get("tokens").asInt());
        }
        int n = r.get("device_queue_overruns").asInt();
        if (n > 0) {
            out.printf(Locale.ROOT, "    note: in %d of %d dev_ms runs the host took longer than %d us to queue the layer; those runs "
                    + "may hold host time%n", n, runs, QUEUE_MICROS);
        }
    }

    private static String header() {
        return String.format(Locale.ROOT, "%-14s %-6s %6s %9s %9s %8s %9s %6s %8s %9s %7s %9s %9s", "shape", "prec", "tokens", "ms(med)",
                "ms(min)", "TFLOPS", "wGB/s", "exp", "enq_us", "torch_ms", "speedup", "dev_ms", "dev_wGB/s");
    }

    private static String row(JsonNode r) {
        return String.format(Locale.ROOT, "%-14s %-6s %6d %9.3f %9.3f %8.1f %9.0f %6d %8.1f %9s %7s %9.3f %9.0f", r.get("shape").asText(),
                r.get("precision").asText(), r.get("tokens").asInt(), r.get("median_ms").asDouble(), r.get("min_ms").asDouble(),
                r.get("tflops").asDouble(), r.get("weight_gbps").asDouble(), r.get("experts_used").asInt(), r.get("enqueue_us").asDouble(),
                r.has("torch_ms") ? String.format(Locale.ROOT, "%.3f", r.get("torch_ms").asDouble()) : "-",
                r.has("torch_over_ours") ? String.format(Locale.ROOT, "%.2fx", r.get("torch_over_ours").asDouble()) : "-",
                r.get("device_ms").asDouble(), r.get("device_weight_gbps").asDouble());
    }

    /** Runs the peer for one shape and precision over all token counts; its failures are reported, not fatal. */
    private Map<Integer, Double> runPeer(String shape, String precision, PrintWriter out) {
        List<String> cmd = new ArrayList<>(Arrays.asList(peer.trim().split("\\s+")));
        cmd.addAll(List.of("--shape", shape, "--precision", precision, "--tokens", joined(tokens), "--runs", Integer.toString(runs),
                "--warmup", Integer.toString(warmup), "--rotations", Integer.toString(rotations)));
        Map<Integer, Double> ms = new HashMap<>();
        try {
            Process proc = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            try (BufferedReader r = new BufferedReader(new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    if (line.startsWith("{")) {
                        JsonNode n = JSON.readTree(line);
                        ms.put(n.get("tokens").asInt(), n.get("median_ms").asDouble());
                    } else {
                        out.println("  [peer] " + line);
                    }
                }
            }
            int rc = proc.waitFor();
            if (rc != 0) out.println("  [peer] exited with " + rc + " for " + shape + " " + precision);
        } catch (IOException e) {
            out.println("  [peer] could not run '" + peer + "': " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CliException("interrupted while running the peer", e);
        }
        return ms;
    }

    private static String joined(List<Integer> xs) {
        StringBuilder b = new StringBuilder();
        for (int x : xs) b.append(b.length() == 0 ? "" : ",").append(x);
        return b.toString();
    }
}
