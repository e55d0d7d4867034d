package dev.sparkmoe.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkmoe.model.MoeConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * A Hugging Face checkpoint directory: {@code config.json} plus either {@code model.safetensors},
 * a sharded set named by {@code model.safetensors.index.json}, or (without an index) every {@code *.safetensors}
 * file in the directory. Files are opened and validated on first use and memory-mapped.
 */
public final class Checkpoint implements AutoCloseable {
    public static final String INDEX = "model.safetensors.index.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final MoeConfig config;
    private final Map<String, String> tensorToFile;
    private final Map<String, SafetensorsFile> open = new LinkedHashMap<>();
    private boolean closed;

    private Checkpoint(Path dir, MoeConfig config, Map<String, String> tensorToFile) {
        this.dir = dir;
        this.config = config;
        this.tensorToFile = tensorToFile;
    }

    public static Checkpoint open(Path dir) {
        if (!Files.isDirectory(dir)) throw new CheckpointException("model directory " + dir + " does not exist");
        Path cfg = dir.resolve("config.json");
        if (!Files.isRegularFile(cfg)) throw new CheckpointException("model directory " + dir + " has no config.json");
        MoeConfig config = MoeConfig.read(cfg);
        return new Checkpoint(dir, config, tensorMap(dir));
    }

    private static Map<String, String> tensorMap(Path dir) {
        Map<String, String> map = new TreeMap<>();
        Path index = dir.resolve(INDEX);
        if (Files.isRegularFile(index)) {
            JsonNode root;
            try {
                root = JSON.readTree(Files.readAllBytes(index));
            } catch (IOException e) {
                throw new CheckpointException("cannot read " + index + ": " + e.getMessage(), e);
            }
            JsonNode wm = root == null ? null : root.get("weight_map");
            if (wm == null || !wm.isObject()) throw new CheckpointException(index + " has no weight_map object");
            wm.fields().forEachRemaining(e -> {
                String file = e.getValue().asText();
                if (file.contains("/") || file.contains("..")) throw new CheckpointException(index + " names a shard outside the directory: " + file);
                map.put(e.getKey(), file);
            });
            for (String file : new java.util.TreeSet<>(map.values())) {
                if (!Files.isRegularFile(dir.resolve(file))) throw new CheckpointException("shard " + file + " named by " + index + " is missing");
            }
            return map;
        }
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        } catch (IOException e) {
            throw new CheckpointException("cannot list " + dir + ": " + e, e);
        }
        if (files.isEmpty()) throw new CheckpointException("model directory " + dir + " has no .safetensors file");
        for (Path p : files) {
            try (SafetensorsFile f = SafetensorsFile.open(p)) {
                for (String name : f.names()) {
                    String prev = map.put(name, p.getFileName().toString());
                    if (prev != null) throw new CheckpointException("tensor '" + name + "' is in both " + prev + " and " + p.getFileName());
                }
            }
        }
        return map;
    }

    public Path directory() { return dir; }

    public MoeConfig config() { return config; }

    public boolean contains(String name) { return tensorToFile.containsKey(name); }

    public List<String> tensorNames() { return new ArrayList<>(tensorToFile.keySet()); }

    /** The tensor, memory-mapped; a clear error naming it when it is missing. */
    public synchronized Tensor tensor(String name) {
        return fileHolding(name).tensor(name);
    }

    /**
     * A tensor's header entry (dtype, shape, offsets), without mapping its bytes; a clear error when it is missing or
     * of a dtype this library does not compute with.
     */
    public synchronized SafetensorsFile.Entry entry(String name) {
        SafetensorsFile f = fileHolding(name);
        SafetensorsFile.Entry e = f.entries().get(name);
        if (e == null) DType.fromSafetensorsName(f.otherDtypes().get(name), name); // throws, naming the dtype
        return e;
    }

    /** The safetensors dtype name of any tensor, including those of dtypes this library does not compute with. */
    public synchronized String dtypeName(String name) {
        SafetensorsFile f = fileHolding(name);
        SafetensorsFile.Entry e = f.entries().get(name);
        return e != null ? e.dtype().safetensorsName() : f.otherDtypes().get(name);
    }

    /** The file name (in the directory) that holds {@code name}, or null when the checkpoint has no such tensor. */
    public String fileOf(String name) { return tensorToFile.get(name); }

    private SafetensorsFile fileHolding(String name) {
        if (closed) throw new CheckpointException("checkpoint " + dir + " is closed");
        String file = tensorToFile.get(name);
        if (file == null) throw new CheckpointException("tensor '" + name + "' is missing from the checkpoint in " + dir);
        SafetensorsFile f = open.computeIfAbsent(file, k -> SafetensorsFile.open(dir.resolve(k)));
        if (!f.contains(name)) throw new CheckpointException("tensor '" + name + "' is not in shard " + file + " although the index says so");
        return f;
    }

    /** The tensor if present, else null. */
    public Tensor tensorOrNull(String name) { return contains(name) ? tensor(name) : null; }

    @Override
    public synchronized void close() {
        if (closed) throw new IllegalStateException("checkpoint " + dir + " closed twice");
        closed = true;
        for (SafetensorsFile f : open.values()) f.close();
        open.clear();
    }
}
