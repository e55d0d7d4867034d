package dev.sparkmoe.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Writes safetensors checkpoints: one file, or shards of at most {@code maxShardBytes} with a
 * {@code model.safetensors.index.json}, as Hugging Face does. Tensors are declared first and their bytes produced
 * on write by a filler, so a multi-gigabyte checkpoint never sits whole on the heap. Every file is written to a
 * temporary name and renamed into place, so a failed write leaves no partial file behind.
 */
public final class SafetensorsWriter {
    private static final ObjectMapper JSON = new ObjectMapper();

    private record Pending(String name, DType dtype, long[] shape, Consumer<ByteBuffer> filler) {
        long bytes() { return Tensor.numel(shape) * dtype.bytes(); }
    }

    private final Map<String, Pending> tensors = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafetensorsWriter() {
        metadata.put("format", "pt");
    }

    /**
     * Declares a tensor. {@code filler} receives a little-endian buffer of exactly the tensor's byte size and must fill it.
     */
    public SafetensorsWriter add(String name, DType dtype, long[] shape, Consumer<ByteBuffer> filler) {
        if (name.equals("__metadata__")) throw new CheckpointException("'__metadata__' is not a tensor name");
        if (tensors.containsKey(name)) throw new CheckpointException("tensor '" + name + "' declared twice");
        long bytes = Tensor.numel(shape) * dtype.bytes();
        if (bytes > Integer.MAX_VALUE) throw new CheckpointException("tensor '" + name + "' is over 2 GiB");
        tensors.put(name, new Pending(name, dtype, shape.clone(), filler));
        return this;
    }

    /** Declares a float32 tensor from an array. */
    public SafetensorsWriter addFloats(String name, long[] shape, float[] values) {
        if (Tensor.numel(shape) != values.length) throw new CheckpointException("tensor '" + name + "': " + values.length + " values for shape " + java.util.Arrays.toString(shape));
        return add(name, DType.F32, shape, b -> b.asFloatBuffer().put(values));
    }

    /** Writes everything into {@code file} (a single safetensors file). */
    public void writeFile(Path file) {
        writeShard(file, new ArrayList<>(tensors.values()));
    }

    /**
     * Writes {@code model.safetensors} when everything fits in one shard, else
     * {@code model-0000k-of-0000n.safetensors} plus the index. Returns the files written.
     */
    public List<Path> writeDirectory(Path dir, long maxShardBytes) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new CheckpointException("cannot create " + dir + ": " + e, e);
        }
        List<List<Pending>> shards = new ArrayList<>();
        List<Pending> cur = new ArrayList<>();
        long curBytes = 0;
        for (Pending p : tensors.values()) {
            if (!cur.isEmpty() && curBytes + p.bytes() > maxShardBytes) {
                shards.add(cur);
                cur = new ArrayList<>();
                curBytes = 0;
            }
            cur.add(p);
            curBytes += p.bytes();
        }
        if (!cur.isEmpty() || shards.isEmpty()) shards.add(cur);
        List<Path> written = new ArrayList<>();
        if (shards.size() == 1) {
            Path f = dir.resolve("model.safetensors");
            writeShard(f, shards.get(0));
            written.add(f);
            return written;
        }
        ObjectNode index = JSON.createObjectNode();
        long total = 0;
        ObjectNode weightMap = JSON.createObjectNode();
        for (int i = 0; i < shards.size(); i++) {
            String name = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
            writeShard(dir.resolve(name), shards.get(i));
            written.add(dir.resolve(name));
            for (Pending p : shards.get(i)) {
                weightMap.put(p.name(), name);
                total += p.bytes();
            }
        }
        index.putObject("metadata").put("total_size", total);
        index.set("weight_map", weightMap);
        Path idx = dir.resolve(Checkpoint.INDEX);
        writeAtomically(idx, index.toPrettyString().getBytes(StandardCharsets.UTF_8));
        written.add(idx);
        return written;
    }

    private void writeShard(Path file, List<Pending> items) {
        ObjectNode header = JSON.createObjectNode();
        ObjectNode meta = header.putObject("__metadata__");
        metadata.forEach(meta::put);
        long offset = 0;
        for (Pending p : items) {
            ObjectNode t = header.putObject(p.name());
            t.put("dtype", p.dtype().safetensorsName());
            var shape = t.putArray("shape");
            for (long d : p.shape()) shape.add(d);
            t.putArray("data_offsets").add(offset).add(offset + p.bytes());
            offset += p.bytes();
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8; // keeps the data area 8-byte aligned, as the reference writer does
        byte[] h = new byte[padded];
        java.util.Arrays.fill(h, (byte) ' ');
        System.arraycopy(json, 0, h, 0, json.length);
        Path tmp = tempBeside(file);
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).flip();
            writeFully(ch, len);
            writeFully(ch, ByteBuffer.wrap(h));
            for (Pending p : items) {
                ByteBuffer buf = ByteBuffer.allocate((int) p.bytes()).order(ByteOrder.LITTLE_ENDIAN);
                p.filler().accept(buf);
                buf.clear();
                writeFully(ch, buf);
            }
            ch.force(false);
            ch.close();
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException | RuntimeException e) {
            deleteQuietly(tmp);
            if (e instanceof CheckpointException ce) throw ce;
            throw new CheckpointException("cannot write " + file + ": " + e, e);
        }
    }

    /**
     * An empty file with a fresh name beside {@code file}, created with default permissions: {@link Files#createTempFile}
     * would make it owner-only (0600), and the renamed checkpoint would then be unreadable to other users (a shared
     * model directory read by Spark executors under another account).
     */
    static Path tempBeside(Path file) {
        Path parent = file.toAbsolutePath().getParent();
        for (int attempt = 0; ; attempt++) {
            Path tmp = parent.resolve("." + file.getFileName() + "." + Long.toHexString(java.util.concurrent.ThreadLocalRandom.current().nextLong()) + ".tmp");
            try {
                Files.newByteChannel(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE).close();
                return tmp;
            } catch (java.nio.file.FileAlreadyExistsException e) {
                if (attempt > 100) throw new CheckpointException("cannot create a temporary file in " + parent, e);
            } catch (IOException e) {
                throw new CheckpointException("cannot write into " + parent + ": " + e, e);
            }
        }
    }

    static void writeAtomically(Path file, byte[] content) {
        Path tmp = tempBeside(file);
        try {
            Files.write(tmp, content);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            deleteQuietly(tmp);
            throw new CheckpointException("cannot write " + file + ": " + e, e);
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }

    private static void deleteQuietly(Path p) {
        try { Files.deleteIfExists(p); } catch (IOException ignored) { /* best effort */ }
    }
}
