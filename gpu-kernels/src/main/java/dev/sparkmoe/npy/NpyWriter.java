package dev.sparkmoe.npy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes {@code .npy} files as NumPy does (format 1.0, or 2.0 when the header needs more than 64 KiB; C order;
 * data aligned to 64 bytes). The file is written under a temporary name beside the target and renamed into place
 * once complete, so a failure never leaves a partial file under the target name.
 */
public final class NpyWriter {
    /** Bytes per write call while streaming data. */
    private static final int CHUNK_BYTES = 1 << 20;

    private NpyWriter() {}

    /** Produces the array's bytes, in C order, little-endian. */
    @FunctionalInterface
    public interface Body {
        /** Writes exactly the data bytes through {@code out}; called once. */
        void write(ChunkedOutput out) throws IOException;
    }

    /** Where a {@link Body} writes: a reusable little-endian buffer flushed to the file whenever it fills. */
    public static final class ChunkedOutput {
        private final FileChannel ch;
        private final ByteBuffer buf = ByteBuffer.allocate(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        private long written;

        private ChunkedOutput(FileChannel ch) { this.ch = ch; }

        /** A buffer with at least {@code bytes} (at most 1 MiB) free. */
        public ByteBuffer room(int bytes) throws IOException {
            if (buf.remaining() < bytes) flush();
            return buf;
        }

        void flush() throws IOException {
            buf.flip();
            while (buf.hasRemaining()) written += ch.write(buf);
            buf.clear();
        }
    }

    public static void writeFloat32(Path file, long[] shape, float[] data) {
        writeChunked(file, NpyDType.FLOAT32, shape, data.length, 4, (b, from, n) -> b.asFloatBuffer().put(data, from, n));
    }

    public static void writeUint16(Path file, long[] shape, short[] data) {
        writeChunked(file, NpyDType.UINT16, shape, data.length, 2, (b, from, n) -> b.asShortBuffer().put(data, from, n));
    }

    public static void writeFloat64(Path file, long[] shape, double[] data) {
        writeChunked(file, NpyDType.FLOAT64, shape, data.length, 8, (b, from, n) -> b.asDoubleBuffer().put(data, from, n));
    }

    /** Copies elements [from, from+n) of a primitive array into the start of {@code b} (little-endian). */
    private interface ChunkCopy {
        void copy(ByteBuffer b, int from, int n);
    }

    /** Writes a primitive array of {@code length} elements of {@code elemBytes} each, a chunk at a time. */
    private static void writeChunked(Path file, NpyDType dtype, long[] shape, int length, int elemBytes, ChunkCopy copy) {
        checkLength(shape, length);
        write(file, dtype, shape, out -> {
            for (int i = 0; i < length; ) {
                int n = Math.min(CHUNK_BYTES / elemBytes, length - i);
                ByteBuffer b = out.room(n * elemBytes);
                copy.copy(b, i, n);
                b.position(b.position() + n * elemBytes);
                i += n;
            }
        });
    }

    /** Writes any dtype; the body must produce exactly {@code numel(shape) * itemSize} bytes. */
    public static void write(Path file, NpyDType dtype, long[] shape, Body body) {
        write(file, dtype, shape, 1, body);
    }

    /** As {@link #write(Path, NpyDType, long[], Body)}, with at least format version {@code minMajor} (1, 2 or 3). */
    static void write(Path file, NpyDType dtype, long[] shape, int minMajor, Body body) {
        byte[] preamble = NpyHeader.encode(dtype, shape, minMajor);
        long dataBytes = new NpyHeader(dtype, false, shape, 1, 0).dataBytes();
        if (Files.isDirectory(file)) throw new NpyException("cannot write " + file + ": it is a directory");
        Path tmp = createTempBeside(file);
        boolean moved = false;
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ByteBuffer p = ByteBuffer.wrap(preamble);
                while (p.hasRemaining()) ch.write(p);
                ChunkedOutput out = new ChunkedOutput(ch);
                body.write(out);
                out.flush();
                if (out.written != dataBytes) {
                    throw new NpyException("internal error writing " + file + ": " + out.written + " data bytes written, "
                            + dtype.descr() + Arrays.toString(shape) + " needs " + dataBytes);
                }
                ch.force(false);
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            moved = true;
        } catch (IOException e) {
            throw new NpyException("cannot write " + file + ": " + describe(e), e);
        } finally {
            if (!moved) {
                try { Files.deleteIfExists(tmp); } catch (IOException ignored) { /* best effort; the target is untouched */ }
            }
        }
    }

    /**
     * An empty file with a fresh name beside {@code file}, created with the default permissions (so the renamed
     * result has the permissions a plain new file would get, unlike {@link Files#createTempFile}'s owner-only ones).
     */
    static Path createTempBeside(Path file) {
        Path parent = file.toAbsolutePath().getParent();
        for (int attempt = 0; ; attempt++) {
            Path tmp = parent.resolve("." + file.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
            try {
                Files.newByteChannel(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE).close();
                return tmp;
            } catch (java.nio.file.FileAlreadyExistsException e) {
                if (attempt > 100) throw new NpyException("cannot create a temporary file in " + parent, e);
            } catch (IOException e) {
                throw new NpyException("cannot write " + file + ": " + describe(e), e);
            }
        }
    }

    private static String describe(IOException e) {
        if (e instanceof AccessDeniedException) return "permission denied (" + e.getMessage() + ")";
        if (e instanceof NoSuchFileException) return "directory does not exist (" + e.getMessage() + ")";
        return e.toString();
    }

    private static void checkLength(long[] shape, int length) {
        long n = NpyHeader.numel(shape);
        if (n != length) throw new NpyException(length + " values do not fill shape " + Arrays.toString(shape) + " (" + n + " elements)");
    }
}
