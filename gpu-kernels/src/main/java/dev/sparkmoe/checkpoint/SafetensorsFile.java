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
    /** Duplicate keys in a header are corrupt, not "last one wins". */
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    /** Where one tensor lives in the file. */
    public record Entry(String name, DType dtype, long[] shape, long begin, long end) {}

    /**
     * Element sizes of the other safetensors dtypes. Real checkpoints can hold such tensors outside the MoE layers
     * (integer buffers, float64 tables); the file stays readable and only using one of them is an error.
     */
    private static final Map<String, Integer> OTHER_DTYPE_BYTES = Map.ofEntries(
            Map.entry("BOOL", 1), Map.entry("U8", 1), Map.entry("I8", 1), Map.entry("F8_E5M2", 1), Map.entry("F8_E8M0", 1),
            Map.entry("I16", 2), Map.entry("U16", 2), Map.entry("I32", 4), Map.entry("U32", 4),
            Map.entry("F64", 8), Map.entry("I64", 8), Map.entry("U64", 8), Map.entry("C64", 8));

    /** A header entry as parsed, before it is known whether this library computes with its dtype. */
    private record Span(String name, String dtypeName, long[] shape, long begin, long end) {}

    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, Entry> entries;
    private final Map<String, String> otherDtypes;
    private final Set<String> names;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, FileChannel channel, long dataStart, Map<String, Entry> entries,
                            Map<String, String> otherDtypes, Set<String> names, Map<String, String> metadata) {
        this.path = path;
        this.channel = channel;
        this.dataStart = dataStart;
        this.entries = entries;
        this.otherDtypes = otherDtypes;
        this.names = names;
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
            if (n > MAX_HEADER_BYTES && n <= size - 8) {
                throw corrupt(path, "header length " + n + " exceeds the " + MAX_HEADER_BYTES + "-byte limit (corrupt file?)");
            }
            if (n < 2 || n > size - 8) {
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
            Map<String, String> otherDtypes = new LinkedHashMap<>();
            Set<String> names = new java.util.LinkedHashSet<>();
            List<Span> spans = new ArrayList<>();
            Map<String, String> metadata = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> f = it.next();
                String name = f.getKey();
                JsonNode t = f.getValue();
                if (name.equals("__metadata__")) {
                    if (t.isObject()) t.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                    continue;
                }
                Span sp = span(path, name, t, dataLen);
                spans.add(sp);
                names.add(name);
                DType known = knownDType(sp.dtypeName());
                if (known != null) entries.put(name, new Entry(name, known, sp.shape(), sp.begin(), sp.end()));
                else otherDtypes.put(name, sp.dtypeName());
            }
            checkNoOverlap(path, spans);
            return new SafetensorsFile(path, ch, dataStart, Collections.unmodifiableMap(entries),
                    Collections.unmodifiableMap(otherDtypes), Collections.unmodifiableSet(names), metadata);
        } catch (IOException e) {
            throw new CheckpointException("cannot read safetensors file " + path + ": " + e, e);
        }
    }

    private static DType knownDType(String name) {
        for (DType d : DType.values()) if (d.safetensorsName().equals(name)) return d;
        return null;
    }

    private static Span span(Path path, String name, JsonNode t, long dataLen) {
        if (!t.isObject()) throw corrupt(path, "entry '" + name + "' is not an object");
        String dtypeName = t.path("dtype").asText("");
        DType known = knownDType(dtypeName);
        Integer itemBytes = known != null ? Integer.valueOf(known.bytes()) : OTHER_DTYPE_BYTES.get(dtypeName);
        if (itemBytes == null) DType.fromSafetensorsName(dtypeName, name); // throws, naming tensor and dtype
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
            need = Math.multiplyExact(Tensor.numel(shape), (long) itemBytes);
        } catch (ArithmeticException e) {
            throw corrupt(path, "tensor '" + name + "' shape " + s + " overflows");
        }
        if (end - begin != need) {
            throw corrupt(path, "tensor '" + name + "' spans " + (end - begin) + " bytes but " + dtypeName + s + " needs " + need);
        }
        return new Span(name, dtypeName, shape, begin, end);
    }

    private static void checkNoOverlap(Path path, List<Span> spans) {
        List<Span> sorted = new ArrayList<>(spans);
        sorted.removeIf(e -> e.end() == e.begin()); // empty tensors occupy no bytes
        sorted.sort(Comparator.comparingLong(Span::begin).thenComparingLong(Span::end));
        Span furthest = null; // the entry reaching furthest so far: any overlap shows against it
        for (Span e : sorted) {
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

    /** Every tensor of the file, whatever its dtype. */
    public Set<String> names() { return names; }

    /** The tensors whose dtype this library computes with (F32, BF16, F16, F8_E4M3). */
    public Map<String, Entry> entries() { return entries; }

    /** The other tensors (valid, but of a dtype such as I64 or F64 this library does not compute with): name to dtype. */
    public Map<String, String> otherDtypes() { return otherDtypes; }

    public Map<String, String> metadata() { return metadata; }

    public boolean contains(String name) { return names.contains(name); }

    /** Memory-maps one tensor. */
    public Tensor tensor(String name) {
        Entry e = entries.get(name);
        if (e == null && otherDtypes.containsKey(name)) DType.fromSafetensorsName(otherDtypes.get(name), name); // throws
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
