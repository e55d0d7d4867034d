package dev.sparkmoe.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One {@code .safetensors} file: an 8-byte little-endian header length N, N bytes of JSON
 * ({@code name -> {dtype, shape, data_offsets:[begin,end]}}, offsets relative to the data area), then the data.
 * The header is validated whole on open (length, offsets in range and not overlapping, sizes matching dtype and
 * shape); tensor bytes are memory-mapped on first use.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** Larger headers are refused as corrupt (real checkpoints use a few hundred KB at most). */
    static final long MAX_HEADER_BYTES = 100L << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Where one tensor lives in the file. */
    public record Entry(String name, DType dtype, long[] shape, long begin, long end) {}

    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, FileChannel channel, long dataStart, Map<String, Entry> entries,
                            Map<String, String> metadata) {
        this.path = path;
        this.channel = channel;
        this.dataStart = dataStart;
        this.entries = entries;
        this.metadata = metadata;
    }

    public static SafetensorsFile open(Path path) {
        FileChannel ch;
        try {
            ch = FileChannel.open(path, StandardOpenOption.READ);
        } catch (IOException e) {
            throw new CheckpointException("cannot open safetensors file " + path + ": " + e, e);
        }
        try {
            return parse(path, ch);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    private static SafetensorsFile parse(Path path, FileChannel ch) {
        try {
            long size = ch.size();
            if (size < 8) throw corrupt(path, "file is " + size + " bytes, shorter than the 8-byte header length");
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long n = lenBuf.flip().getLong();
            if (n < 2 || n > MAX_HEADER_BYTES || n > size - 8) {
                throw corrupt(path, "header length " + n + " is past the end of the " + size + "-byte file (truncated or not safetensors)");
            }
            ByteBuffer header = ByteBuffer.allocate((int) n);
            readFully(ch, header, 8);
            JsonNode root;
            try {
                root = JSON.readTree(header.array());
            } catch (IOException e) {
                throw corrupt(path, "header is not valid JSON: " + e.getMessage());
            }
            if (root == null || !root.isObject()) throw corrupt(path, "header is not a JSON object");
            long dataStart = 8 + n;
            long dataLen = size - dataStart;
            Map<String, Entry> entries = new LinkedHashMap<>();
            Map<String, String> metadata = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> f = it.next();
                String name = f.getKey();
                JsonNode t = f.getValue();
                if (name.equals("__metadata__")) {
                    if (t.isObject()) t.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                    continue;
                }
                entries.put(name, entry(path, name, t, dataLen));
            }
            checkNoOverlap(path, entries);
            return new SafetensorsFile(path, ch, dataStart, Collections.unmodifiableMap(entries), metadata);
        } catch (IOException e) {
            throw new CheckpointException("cannot read safetensors file " + path + ": " + e, e);
        }
    }

    private static Entry entry(Path path, String name, JsonNode t, long dataLen) {
        if (!t.isObject()) throw corrupt(path, "entry '" + name + "' is not an object");
        DType dtype = DType.fromSafetensorsName(t.path("dtype").asText(""), name);
        JsonNode s = t.get("shape");
        JsonNode o = t.get("data_offsets");
        if (s == null || !s.isArray()) throw corrupt(path, "tensor '" + name + "' has no shape");
        if (o == null || !o.isArray() || o.size() != 2) throw corrupt(path, "tensor '" + name + "' has no [begin, end] data_offsets");
        long[] shape = new long[s.size()];
        for (int i = 0; i < shape.length; i++) {
            if (!s.get(i).canConvertToLong() || s.get(i).asLong() < 0) throw corrupt(path, "tensor '" + name + "' has a bad shape " + s);
            shape[i] = s.get(i).asLong();
        }
        long begin = o.get(0).asLong(-1), end = o.get(1).asLong(-1);
        if (begin < 0 || end < begin || end > dataLen) {
            throw corrupt(path, "tensor '" + name + "' data_offsets [" + begin + ", " + end + "] are out of range of the "
                    + dataLen + "-byte data area (truncated file?)");
        }
        long need;
        try {
            need = Math.multiplyExact(Tensor.numel(shape), dtype.bytes());
        } catch (ArithmeticException e) {
            throw corrupt(path, "tensor '" + name + "' shape " + s + " overflows");
        }
        if (end - begin != need) {
            throw corrupt(path, "tensor '" + name + "' spans " + (end - begin) + " bytes but " + dtype + s + " needs " + need);
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    private static void checkNoOverlap(Path path, Map<String, Entry> entries) {
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.removeIf(e -> e.end() == e.begin()); // empty tensors occupy no bytes
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        Entry furthest = null; // the entry reaching furthest so far: any overlap shows against it
        for (Entry e : sorted) {
            if (furthest != null && e.begin() < furthest.end()) {
                throw corrupt(path, "tensors '" + furthest.name() + "' and '" + e.name() + "' overlap in the data area");
            }
            if (furthest == null || e.end() > furthest.end()) furthest = e;
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer dst, long pos) throws IOException {
        while (dst.hasRemaining()) {
            int r = ch.read(dst, pos);
            if (r < 0) throw new IOException("unexpected end of file");
            pos += r;
        }
    }

    private static CheckpointException corrupt(Path path, String why) {
        return new CheckpointException("corrupt safetensors file " + path + ": " + why);
    }

    private static void closeQuietly(FileChannel ch) {
        try { ch.close(); } catch (IOException ignored) { /* already failing */ }
    }

    public Path path() { return path; }

    public Set<String> names() { return entries.keySet(); }

    public Map<String, Entry> entries() { return entries; }

    public Map<String, String> metadata() { return metadata; }

    public boolean contains(String name) { return entries.containsKey(name); }

    /** Memory-maps one tensor. */
    public Tensor tensor(String name) {
        Entry e = entries.get(name);
        if (e == null) throw new CheckpointException("tensor '" + name + "' is not in " + path);
        long len = e.end() - e.begin();
        if (len > Integer.MAX_VALUE) throw new CheckpointException("tensor '" + name + "' is " + len + " bytes; tensors over 2 GiB are not supported");
        try {
            ByteBuffer buf = len == 0 ? ByteBuffer.allocate(0) : channel.map(FileChannel.MapMode.READ_ONLY, dataStart + e.begin(), len);
            return new Tensor(name, e.dtype(), e.shape(), buf);
        } catch (IOException ex) {
            throw new CheckpointException("cannot map tensor '" + name + "' of " + path + ": " + ex, ex);
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException e) {
            throw new CheckpointException("cannot close " + path + ": " + e, e);
        }
    }
}
