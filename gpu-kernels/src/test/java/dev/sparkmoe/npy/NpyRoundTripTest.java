package dev.sparkmoe.npy;

import dev.sparkmoe.testing.TensorChecks;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class NpyRoundTripTest {
    @TempDir Path tmp;

    @Test
    void float32RoundTripsAcrossChunkBoundariesAndVersions() {
        long seed = TensorChecks.freshSeed();
        // 700 000 floats span three 1 MiB chunks with a ragged end.
        float[] x = TensorChecks.randomNormal(seed, 700_000, 1.0);
        for (int version = 1; version <= 3; version++) {
            Path f = tmp.resolve("x" + version + ".npy");
            NpyWriter.write(f, NpyDType.FLOAT32, new long[] {1000, 700}, version, out -> {
                for (float v : x) out.room(4).putFloat(v);
            });
            try (NpyFile r = NpyFile.open(f)) {
                assertEquals(version, r.header().majorVersion());
                assertArrayEquals(new long[] {1000, 700}, r.shape());
                assertArrayEquals(x, r.readFloat32(), "seed " + seed);
                ByteBuffer mapped = r.map();
                for (int i = 0; i < x.length; i += 9973) assertEquals(x[i], mapped.getFloat(4 * i));
            }
        }
        Path plain = tmp.resolve("plain.npy");
        NpyWriter.writeFloat32(plain, new long[] {1000, 700}, x);
        assertArrayEquals(x, NpyFile.readFloat32(plain));
    }

    @Test
    void uint16AndZeroDimensionalRoundTrip() {
        short[] s = new short[5001];
        SplittableRandom r = new SplittableRandom(TensorChecks.freshSeed());
        for (int i = 0; i < s.length; i++) s[i] = (short) r.nextInt(65536);
        Path f = tmp.resolve("u.npy");
        NpyWriter.writeUint16(f, new long[] {3, 1667}, s);
        try (NpyFile n = NpyFile.open(f)) {
            assertArrayEquals(s, n.readUint16());
        }
        Path scalar = tmp.resolve("scalar.npy");
        NpyWriter.writeFloat32(scalar, new long[] {}, new float[] {2.5f});
        try (NpyFile n = NpyFile.open(scalar)) {
            assertEquals(0, n.header().rank());
            assertArrayEquals(new float[] {2.5f}, n.readFloat32());
        }
    }

    @Test
    void hugeHeaderSwitchesToVersion2() {
        long[] shape = new long[23_000];
        java.util.Arrays.fill(shape, 1);
        Path f = tmp.resolve("wide.npy");
        NpyWriter.writeFloat32(f, shape, new float[] {1.5f});
        try (NpyFile n = NpyFile.open(f)) {
            assertEquals(2, n.header().majorVersion());
            assertEquals(23_000, n.header().rank());
            assertEquals(0, n.header().dataOffset() % 64);
            assertArrayEquals(new float[] {1.5f}, n.readFloat32());
        }
    }

    @Test
    void tolerantHeaderSyntax() throws IOException {
        // Hand-made headers as other writers produce them: double quotes, no trailing comma, odd spacing, 'L' longs.
        String[] dicts = {
            "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3)}",
            "{ 'shape' : ( 2 ,3 ,) ,'fortran_order':False,'descr':'<f4' , }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",
        };
        float[] x = {1, 2, 3, 4, 5, 6};
        for (String d : dicts) {
            Path f = handMade(d, 1, x);
            try (NpyFile n = NpyFile.open(f)) {
                assertArrayEquals(new long[] {2, 3}, n.shape(), d);
                assertArrayEquals(x, n.readFloat32(), d);
            }
        }
    }

    @Test
    void corruptFilesGiveClearErrors() throws IOException {
        float[] six = {1, 2, 3, 4, 5, 6};
        expectError(tmp.resolve("missing.npy"), "does not exist");
        Path notNpy = tmp.resolve("text.npy");
        Files.writeString(notNpy, "hello, this is not numpy");
        expectError(notNpy, "magic");
        expectError(handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", 1, six), "truncated");
        expectError(handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", 1, six), "bad .npy header");
        expectError(handMade("{'descr': '<f4', 'shape': (2, 3), }", 1, six), "keys");
        expectError(handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}", 1, six), "keys");
        expectError(handMade("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }", 1, six), "structured");
        expectError(handMade("{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }", 1, six), "not supported");
        expectError(handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 1, six), "non-negative");
        expectError(handMade("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }", 1, six), "fortran_order");
        expectError(handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 4, six), "version 4.0");

        Path shortHeader = tmp.resolve("short.npy");
        byte[] full = Files.readAllBytes(handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1, six));
        Files.write(shortHeader, java.util.Arrays.copyOf(full, 40));
        expectError(shortHeader, "truncated");
        Path dir = Files.createDirectory(tmp.resolve("adir.npy"));
        expectError(dir, "directory");
    }

    private static void expectError(Path f, String fragment) {
        NpyException e = assertThrows(NpyException.class, () -> NpyFile.open(f).close());
        assertTrue(e.getMessage().contains(fragment), "expected '" + fragment + "' in: " + e.getMessage());
        assertTrue(e.getMessage().contains(f.getFileName().toString()), "names the file: " + e.getMessage());
    }

    /** A version-{@code major} file with any header text, 64-aligned like NumPy's, followed by {@code data}. */
    private Path handMade(String dict, int major, float[] data) throws IOException {
        byte[] text = dict.getBytes(StandardCharsets.ISO_8859_1);
        int pre = major == 1 ? 10 : 12;
        int field = (pre + text.length + 1 + 63) / 64 * 64 - pre;
        ByteBuffer b = ByteBuffer.allocate(pre + field + 4 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(NpyHeader.MAGIC).put((byte) major).put((byte) 0);
        if (major == 1) b.putShort((short) field); else b.putInt(field);
        b.put(text);
        for (int i = text.length; i < field - 1; i++) b.put((byte) ' ');
        b.put((byte) '\n');
        for (float v : data) b.putFloat(v);
        Path f = Files.createTempFile(tmp, "hand", ".npy");
        Files.write(f, b.array());
        return f;
    }

    @Test
    void failedWritesLeaveNothingBehind() throws IOException {
        Path target = tmp.resolve("out.npy");
        NpyWriter.writeFloat32(target, new long[] {2}, new float[] {1, 2});
        byte[] before = Files.readAllBytes(target);
        // A body that fails half way: the old file stays whole, no temporary is left.
        assertThrows(NpyException.class, () -> NpyWriter.write(target, NpyDType.FLOAT32, new long[] {4}, out -> {
            out.room(4).putFloat(1);
            throw new IOException("disk full (simulated)");
        }));
        // A body that writes too few bytes.
        NpyException shortBody = assertThrows(NpyException.class,
                () -> NpyWriter.write(target, NpyDType.FLOAT32, new long[] {4}, out -> out.room(4).putFloat(1)));
        assertTrue(shortBody.getMessage().contains("needs 16"), shortBody.getMessage());
        assertArrayEquals(before, Files.readAllBytes(target));
        assertEquals(List.of(target), Files.list(tmp).toList(), "only the original file remains");

        NpyException noDir = assertThrows(NpyException.class,
                () -> NpyWriter.writeFloat32(tmp.resolve("no/such/dir/x.npy"), new long[] {1}, new float[] {1}));
        assertTrue(noDir.getMessage().contains("x.npy") && noDir.getMessage().contains("does not exist"), noDir.getMessage());
        Path asDir = Files.createDirectory(tmp.resolve("d.npy"));
        NpyException isDir = assertThrows(NpyException.class, () -> NpyWriter.writeFloat32(asDir, new long[] {1}, new float[] {1}));
        assertTrue(isDir.getMessage().contains("directory"), isDir.getMessage());
        NpyException count = assertThrows(NpyException.class, () -> NpyWriter.writeFloat32(target, new long[] {3}, new float[] {1}));
        assertTrue(count.getMessage().contains("shape [3]"), count.getMessage());
    }

    /** When python3 with NumPy is at hand, NumPy itself must read what we wrote. */
    @Test
    void numpyReadsOurFiles() throws Exception {
        Assumptions.assumeTrue(pythonHasNumpy(), () -> {
            String why = "skipped: python3 with numpy is not available on this machine";
            System.out.println("[NpyRoundTripTest] " + why);
            return why;
        });
        float[] x = TensorChecks.randomNormal(TensorChecks.freshSeed(), 6 * 130, 1.0);
        Path f = tmp.resolve("for-numpy.npy");
        NpyWriter.writeFloat32(f, new long[] {6, 130}, x);
        double sum = 0;
        for (float v : x) sum += v;
        String script = "import numpy as np, sys\n"
                + "a = np.load(sys.argv[1])\n"
                + "assert a.dtype == np.dtype('<f4') and a.shape == (6, 130) and a.flags['C_CONTIGUOUS'], (a.dtype, a.shape)\n"
                + "print(repr(float(a.astype(np.float64).sum())), a[5, 129].view(np.uint32))\n";
        Process p = new ProcessBuilder("python3", "-c", script, f.toString()).redirectErrorStream(true).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "python3 timed out");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertEquals(0, p.exitValue(), out);
        String[] parts = out.split("\\s+");
        assertEquals(sum, Double.parseDouble(parts[0]), 1e-9 * Math.max(1, Math.abs(sum)), out);
        assertEquals(Integer.toUnsignedLong(Float.floatToRawIntBits(x[6 * 130 - 1])), Long.parseLong(parts[1]), out);
    }

    static boolean pythonHasNumpy() {
        try {
            Process p = new ProcessBuilder("python3", "-c", "import numpy").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    @Test
    void headerParserDetails() {
        Object v = PyLiteral.parse(" {'a': (1,), \"b\": [True, None, 'x\\'y'], 'c': -5, 'd': ()} ");
        assertEquals(java.util.Map.of("a", List.of(1L), "c", -5L, "d", List.of()).get("a"), ((java.util.Map<?, ?>) v).get("a"));
        java.util.List<?> b = (java.util.List<?>) ((java.util.Map<?, ?>) v).get("b");
        assertEquals(Boolean.TRUE, b.get(0));
        assertEquals(null, b.get(1));
        assertEquals("x'y", b.get(2));
        assertEquals(-5L, ((java.util.Map<?, ?>) v).get("c"));
        assertThrows(NpyException.class, () -> PyLiteral.parse("{'a': 1} trailing"));
        assertThrows(NpyException.class, () -> PyLiteral.parse("{'a': 1, 'a': 2}"));
        assertThrows(NpyException.class, () -> PyLiteral.parse("{'a': 99999999999999999999}"));
        assertThrows(NpyException.class, () -> PyLiteral.parse("{'a': 'unterminated}"));
        assertThrows(NpyException.class, () -> PyLiteral.parse("{'a': np.float32}"));
        assertFalse(NpyDType.fromDescr("|u1") != NpyDType.UINT8);
    }
}
