package dev.sparkmoe.npy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

/**
 * A {@code .npy} file open for reading: the header is parsed and checked against the file size on open; the data is
 * then streamed into Java arrays in chunks, or memory-mapped, never read whole into an intermediate buffer.
 */
public final class NpyFile implements AutoCloseable {
    /** Bytes read per I/O call while streaming the data. */
    private static final int CHUNK_BYTES = 1 << 20;

    private final Path path;
    private final FileChannel channel;
    private final NpyHeader header;
    private boolean closed;

    private NpyFile(Path path, FileChannel channel, NpyHeader header) {
        this.path = path;
        this.channel = channel;
        this.header = header;
    }

    public static NpyFile open(Path path) {
        if (Files.isDirectory(path)) throw new NpyException(path + " is a directory, not a .npy file");
        FileChannel ch;
        try {
            ch = FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new NpyException(path + " does not exist", e);
        } catch (IOException e) {
            throw new NpyException("cannot open " + path + ": " + e, e);
        }
        try {
            return new NpyFile(path, ch, readHeader(path, ch));
        } catch (RuntimeException e) {
            try { ch.close(); } catch (IOException ignored) { /* already failing */ }
            throw e;
        }
    }

    private static NpyHeader readHeader(Path path, FileChannel ch) {
        try {
            long size = ch.size();
            ByteBuffer fixed = ByteBuffer.allocate(NpyHeader.MAGIC.length + 2).order(ByteOrder.LITTLE_ENDIAN);
            if (size < fixed.capacity() || !readFully(ch, fixed, 0)
                    || !Arrays.equals(Arrays.copyOf(fixed.array(), NpyHeader.MAGIC.length), NpyHeader.MAGIC)) {
                throw new NpyException(path + " is not a .npy file (no \\x93NUMPY magic)");
            }
            int major = fixed.get(6) & 0xFF, minor = fixed.get(7) & 0xFF;
            if (major < 1 || major > 3 || minor != 0) {
                throw new NpyException(path + ": .npy format version " + major + "." + minor + " is not supported (1.0, 2.0, 3.0)");
            }
            int lenBytes = major == 1 ? 2 : 4;
            ByteBuffer lenBuf = ByteBuffer.allocate(lenBytes).order(ByteOrder.LITTLE_ENDIAN);
            if (!readFully(ch, lenBuf, fixed.capacity())) throw new NpyException(path + " is truncated inside its header");
            long headerLen = major == 1 ? (lenBuf.getShort(0) & 0xFFFF) : (lenBuf.getInt(0) & 0xFFFFFFFFL);
            long dataOffset = NpyHeader.preambleBytes(major) + headerLen;
            if (headerLen > NpyHeader.MAX_HEADER_BYTES) throw new NpyException(path + ": header length " + headerLen + " is implausibly large (corrupt file?)");
            if (dataOffset > size) {
                throw new NpyException(path + " is truncated: header length " + headerLen + " runs past the end of the " + size + "-byte file");
            }
            ByteBuffer text = ByteBuffer.allocate((int) headerLen);
            readFully(ch, text, NpyHeader.preambleBytes(major));
            text.flip();
            String s;
            try {
                s = (major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1).newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT).decode(text).toString();
            } catch (CharacterCodingException e) {
                throw new NpyException(path + ": header is not valid " + (major == 3 ? "UTF-8" : "latin-1"), e);
            }
            NpyHeader h = NpyHeader.parse(s, major, dataOffset);
            long need = h.dataBytes();
            if (size - dataOffset < need) {
                throw new NpyException(path + " is truncated: " + h.dtype().descr() + Arrays.toString(h.shape()) + " needs "
                        + need + " bytes of data but the file holds " + (size - dataOffset));
            }
            return h;
        } catch (NpyException e) {
            if (e.getMessage().contains(path.toString())) throw e;
            throw new NpyException(path + ": " + e.getMessage(), e);
        } catch (IOException e) {
            throw new NpyException("cannot read " + path + ": " + e, e);
        }
    }

    /** Fills {@code dst} from {@code pos}; false at end of file. */
    private static boolean readFully(FileChannel ch, ByteBuffer dst, long pos) throws IOException {
        while (dst.hasRemaining()) {
            int r = ch.read(dst, pos);
            if (r < 0) return false;
            pos += r;
        }
        return true;
    }

    public Path path() { return path; }

    public NpyHeader header() { return header; }

    public NpyDType dtype() { return header.dtype(); }

    public long[] shape() { return header.shape(); }

    /** The data, memory-mapped read-only, little-endian, positioned at 0 (arrays up to 2 GiB). */
    public ByteBuffer map() {
        checkOpen();
        long n = header.dataBytes();
        if (n > Integer.MAX_VALUE) throw new NpyException(path + ": " + n + " bytes of data are too many to map at once (2 GiB at most)");
        try {
            return channel.map(FileChannel.MapMode.READ_ONLY, header.dataOffset(), n).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new NpyException("cannot map " + path + ": " + e, e);
        }
    }

    /** The whole array as float32, for {@code '<f4'} files. */
    public float[] readFloat32() {
        requireDType(NpyDType.FLOAT32);
        float[] out = new float[elementCount()];
        stream((chunk, at) -> chunk.asFloatBuffer().get(out, (int) (at / 4), chunk.remaining() / 4));
        return out;
    }

    /** The whole array as raw 16-bit values, for {@code '<u2'} files (values above 32767 come out negative). */
    public short[] readUint16() {
        requireDType(NpyDType.UINT16);
        short[] out = new short[elementCount()];
        stream((chunk, at) -> chunk.asShortBuffer().get(out, (int) (at / 2), chunk.remaining() / 2));
        return out;
    }

    /** The whole array as float64, for {@code '<f8'} files. */
    public double[] readFloat64() {
        requireDType(NpyDType.FLOAT64);
        double[] out = new double[elementCount()];
        stream((chunk, at) -> chunk.asDoubleBuffer().get(out, (int) (at / 8), chunk.remaining() / 8));
        return out;
    }

    /** The whole array as raw bytes (any dtype), little-endian element order. */
    public byte[] readBytes() {
        byte[] out = new byte[checkedArrayLength(header.dataBytes(), "bytes")];
        stream((chunk, at) -> chunk.get(out, (int) at, chunk.remaining()));
        return out;
    }

    private interface ChunkSink { void accept(ByteBuffer chunk, long byteOffset); }

    /** Streams the data in chunks of whole elements, each with its byte offset in the data. */
    private void stream(ChunkSink sink) {
        checkOpen();
        int item = header.dtype().itemSize();
        long total = header.dataBytes();
        int chunkBytes = CHUNK_BYTES / item * item;
        ByteBuffer buf = ByteBuffer.allocate((int) Math.min(chunkBytes, Math.max(total, 1))).order(ByteOrder.LITTLE_ENDIAN);
        long done = 0;
        try {
            while (done < total) {
                buf.clear().limit((int) Math.min(buf.capacity(), total - done));
                if (!readFully(channel, buf, header.dataOffset() + done)) {
                    throw new NpyException(path + " was truncated while being read");
                }
                buf.flip();
                sink.accept(buf, done);
                done += buf.limit();
            }
        } catch (IOException e) {
            throw new NpyException("cannot read " + path + ": " + e, e);
        }
    }

    private int elementCount() { return checkedArrayLength(header.numel(), "elements"); }

    private int checkedArrayLength(long n, String unit) {
        if (n > Integer.MAX_VALUE - 8) {
            throw new NpyException(path + " holds " + n + " " + unit + ", more than one Java array can take; split it");
        }
        return (int) n;
    }

    private void requireDType(NpyDType want) {
        if (header.dtype() != want) {
            throw new NpyException(path + " holds " + header.dtype().descr() + ", not " + want.descr());
        }
    }

    private void checkOpen() {
        if (closed) throw new NpyException(path + " is closed");
    }

    @Override
    public void close() {
        if (closed) throw new IllegalStateException(path + " closed twice");
        closed = true;
        try {
            channel.close();
        } catch (IOException e) {
            throw new NpyException("cannot close " + path + ": " + e, e);
        }
    }

    /** Reads a whole {@code '<f4'} file. */
    public static float[] readFloat32(Path path) {
        try (NpyFile f = open(path)) { return f.readFloat32(); }
    }
}
