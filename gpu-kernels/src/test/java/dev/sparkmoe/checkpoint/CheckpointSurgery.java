package dev.sparkmoe.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/** Test helper: copies a checkpoint into a new directory with tensors dropped or replaced, or config.json edited. */
final class CheckpointSurgery {
    private record Replacement(DType dtype, long[] shape, Consumer<ByteBuffer> filler) {}

    private final Path source;
    private final Set<String> dropped = new HashSet<>();
    private final Map<String, Replacement> replaced = new HashMap<>();
    private Consumer<ObjectNode> configEdit = c -> {};

    CheckpointSurgery(Path source) { this.source = source; }

    CheckpointSurgery drop(String name) {
        dropped.add(name);
        return this;
    }

    /** Replaces a tensor by zeros of another dtype and/or shape. */
    CheckpointSurgery replace(String name, DType dtype, long... shape) {
        replaced.put(name, new Replacement(dtype, shape, b -> { }));
        return this;
    }

    CheckpointSurgery editConfig(Consumer<ObjectNode> edit) {
        configEdit = edit;
        return this;
    }

    Path writeTo(Path dir) throws IOException {
        SafetensorsWriter w = new SafetensorsWriter();
        try (Checkpoint src = Checkpoint.open(source)) {
            for (String name : src.tensorNames()) {
                if (dropped.contains(name)) continue;
                Replacement r = replaced.get(name);
                if (r != null) {
                    w.add(name, r.dtype(), r.shape(), r.filler());
                } else {
                    Tensor t = src.tensor(name);
                    w.add(name, t.dtype(), t.shape(), b -> b.put(t.bytes()));
                }
            }
        }
        Files.createDirectories(dir);
        w.writeFile(dir.resolve("model.safetensors"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(source.resolve("config.json").toFile());
        configEdit.accept(cfg);
        Files.writeString(dir.resolve("config.json"), cfg.toPrettyString());
        return dir;
    }
}
