package dev.sparkmoe.npy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Reads the files NumPy wrote (src/test/resources/npy, made by make_fixtures.py there) and writes them back byte for byte. */
class NpyFixturesTest {
    @TempDir Path tmp;

    static Path fixture(String name) {
        try {
            return Path.of(NpyFixturesTest.class.getResource("/npy/" + name).toURI());
        } catch (URISyntaxException | NullPointerException e) {
            throw new IllegalStateException("test fixture npy/" + name + " is missing", e);
        }
    }

    /** The f32 formula of make_fixtures.py. */
    static float[] f32(int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) ((i - 7) * 0.375);
        if (n > 0) x[0] = -0.0f;
        return x;
    }

    /** The u16 formula of make_fixtures.py. */
    static short[] u16(int n) {
        short[] x = new short[n];
        for (int i = 0; i < n; i++) x[i] = (short) ((i * 4099L + 16256) % 65536);
        return x;
    }

    @ParameterizedTest
    @CsvSource({"f32_3x5_v1.npy, 1, 3, 5", "f32_4x3_v2.npy, 2, 4, 3", "f32_2x4_v3.npy, 3, 2, 4"})
    void readsFloat32OfEveryVersion(String name, int version, int rows, int cols) {
        try (NpyFile f = NpyFile.open(fixture(name))) {
            assertEquals(version, f.header().majorVersion());
            assertEquals(NpyDType.FLOAT32, f.dtype());
            assertArrayEquals(new long[] {rows, cols}, f.shape());
            assertEquals(0, f.header().dataOffset() % 64, "NumPy aligns the data to 64 bytes");
            float[] got = f.readFloat32();
            assertArrayEquals(f32(rows * cols), got);
            assertEquals(Float.floatToRawIntBits(-0.0f), Float.floatToRawIntBits(got[0]), "sign of zero kept");
        }
    }

    @ParameterizedTest
    @CsvSource({"u16_3x4_v1.npy, 1, 3, 4", "u16_2x6_v3.npy, 3, 2, 6"})
    void readsUint16(String name, int version, int rows, int cols) {
        try (NpyFile f = NpyFile.open(fixture(name))) {
            assertEquals(version, f.header().majorVersion());
            assertEquals(NpyDType.UINT16, f.dtype());
            assertArrayEquals(new long[] {rows, cols}, f.shape());
            assertArrayEquals(u16(rows * cols), f.readUint16());
        }
    }

    @Test
    void readsFloat64OneDimensionalEmptyAndBytes() {
        try (NpyFile f = NpyFile.open(fixture("f64_2x2_v1.npy"))) {
            assertArrayEquals(new double[] {0, 1 / 3.0, 2 / 3.0, 1}, f.readFloat64());
        }
        try (NpyFile f = NpyFile.open(fixture("f32_7_save.npy"))) {
            assertArrayEquals(new long[] {7}, f.shape());
            assertArrayEquals(f32(7), f.readFloat32());
            assertArrayEquals(f32(7), toFloats(f.map()));
        }
        try (NpyFile f = NpyFile.open(fixture("f32_0x4_save.npy"))) {
            assertArrayEquals(new long[] {0, 4}, f.shape());
            assertEquals(0, f.readFloat32().length);
        }
        try (NpyFile f = NpyFile.open(fixture("u1_5_save.npy"))) {
            assertEquals(NpyDType.UINT8, f.dtype());
            assertArrayEquals(new byte[] {0, 50, 100, (byte) 150, (byte) 200}, f.readBytes());
        }
    }

    private static float[] toFloats(java.nio.ByteBuffer b) {
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    @Test
    void refusesFortranOrderAndBigEndianNamingTheCause() {
        NpyException f = assertThrows(NpyException.class, () -> NpyFile.open(fixture("f32_2x3_fortran.npy")));
        assertTrue(f.getMessage().contains("Fortran"), f.getMessage());
        NpyException b = assertThrows(NpyException.class, () -> NpyFile.open(fixture("f32_2x3_bigendian.npy")));
        assertTrue(b.getMessage().contains("'>f4'") && b.getMessage().contains("little-endian"), b.getMessage());
    }

    @Test
    void wrongTypedReadNamesBothTypes() {
        try (NpyFile f = NpyFile.open(fixture("u16_3x4_v1.npy"))) {
            NpyException e = assertThrows(NpyException.class, f::readFloat32);
            assertTrue(e.getMessage().contains("<u2") && e.getMessage().contains("<f4"), e.getMessage());
        }
    }

    /** Our writer produces exactly NumPy's bytes (header text, growth-axis spare room, padding, data). */
    @ParameterizedTest
    @CsvSource({"f32_3x5_v1.npy, 1, 3, 5", "f32_4x3_v2.npy, 2, 4, 3", "f32_2x4_v3.npy, 3, 2, 4", "f32_0x4_save.npy, 1, 0, 4"})
    void writerMatchesNumpyByteForByteFloat32(String name, int version, int rows, int cols) throws IOException {
        Path out = tmp.resolve(name);
        float[] values = f32(rows * cols);
        NpyWriter.write(out, NpyDType.FLOAT32, new long[] {rows, cols}, version, o -> {
            for (float v : values) o.room(4).putFloat(v);
        });
        assertArrayEquals(Files.readAllBytes(fixture(name)), Files.readAllBytes(out));
        if (version == 1) {
            Path plain = tmp.resolve("plain-" + name);
            NpyWriter.writeFloat32(plain, new long[] {rows, cols}, values);
            assertArrayEquals(Files.readAllBytes(fixture(name)), Files.readAllBytes(plain), "default version is 1.0");
        }
    }

    @Test
    void writerMatchesNumpyByteForByteOtherTypes() throws IOException {
        Path u = tmp.resolve("u.npy");
        NpyWriter.writeUint16(u, new long[] {3, 4}, u16(12));
        assertArrayEquals(Files.readAllBytes(fixture("u16_3x4_v1.npy")), Files.readAllBytes(u));
        Path d = tmp.resolve("d.npy");
        NpyWriter.writeFloat64(d, new long[] {2, 2}, new double[] {0, 1 / 3.0, 2 / 3.0, 1});
        assertArrayEquals(Files.readAllBytes(fixture("f64_2x2_v1.npy")), Files.readAllBytes(d));
        Path one = tmp.resolve("one.npy");
        NpyWriter.writeFloat32(one, new long[] {7}, f32(7));
        assertArrayEquals(Files.readAllBytes(fixture("f32_7_save.npy")), Files.readAllBytes(one));
        assertFalse(Files.list(tmp).anyMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temporary file left");
    }
}
