package dev.sparkmoe.spark;

import dev.sparkmoe.checkpoint.Floats;
import dev.sparkmoe.testing.TensorChecks;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.StructField;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The documented byte layouts of hidden-state cells. */
class HiddenEncodingTest {
    @Test void fp32IsLittleEndianBinary32() {
        float[] v = TensorChecks.randomNormal(TensorChecks.freshSeed(), 37, 2.0);
        byte[] b = (byte[]) HiddenEncoding.FP32.encode(v, 0, v.length);
        assertEquals(4 * v.length, b.length);
        ByteBuffer le = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) assertEquals(Float.floatToRawIntBits(x), le.getInt());
        assertArrayEquals(v, HiddenEncoding.FP32.decode(b));
    }

    @Test void bf16IsTheUpperHalfRoundedToNearestEvenLittleEndian() {
        float[] v = TensorChecks.randomNormal(TensorChecks.freshSeed(), 41, 3.0);
        byte[] b = (byte[]) HiddenEncoding.BF16.encode(v, 0, v.length);
        assertEquals(2 * v.length, b.length);
        ByteBuffer le = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        float[] back = HiddenEncoding.BF16.decode(b);
        for (int i = 0; i < v.length; i++) {
            short s = le.getShort();
            assertEquals(Floats.floatToBf16(v[i]), s);
            assertEquals(Float.intBitsToFloat((s & 0xffff) << 16), back[i]);
            assertTrue(Math.abs(back[i] - v[i]) <= Math.abs(v[i]) * 0x1p-8f, "value " + i);
        }
    }

    @Test void arrayEncodingAndSliceOffsets() {
        float[] v = TensorChecks.randomNormal(TensorChecks.freshSeed(), 10, 1.0);
        Object cell = HiddenEncoding.ARRAY.encode(v, 3, 4);
        assertArrayEquals(java.util.Arrays.copyOfRange(v, 3, 7), HiddenEncoding.ARRAY.decode(cell));
    }

    @Test void badCellsAreNamed() {
        assertTrue(assertThrows(HiddenEncoding.BadValueException.class, () -> HiddenEncoding.FP32.decode(null)).getMessage().contains("null"));
        assertTrue(assertThrows(HiddenEncoding.BadValueException.class, () -> HiddenEncoding.FP32.decode(new byte[7]))
                .getMessage().contains("7 bytes is not a whole number of fp32 values"));
        assertTrue(assertThrows(HiddenEncoding.BadValueException.class, () -> HiddenEncoding.BF16.decode(new byte[3]))
                .getMessage().contains("bf16"));
        Object withNull = scala.jdk.javaapi.CollectionConverters.asScala(java.util.Arrays.asList(1f, null, 2f)).toSeq();
        assertTrue(assertThrows(HiddenEncoding.BadValueException.class, () -> HiddenEncoding.ARRAY.decode(withNull))
                .getMessage().contains("element 1"));
    }

    @Test void typesAndInference() {
        assertEquals(HiddenEncoding.ARRAY, HiddenEncoding.inferFrom(new StructField("h", DataTypes.createArrayType(DataTypes.FloatType), true, Metadata.empty())));
        assertEquals(HiddenEncoding.FP32, HiddenEncoding.inferFrom(new StructField("h", DataTypes.BinaryType, true, Metadata.empty())));
        MoeSparkException e = assertThrows(MoeSparkException.class,
                () -> HiddenEncoding.inferFrom(new StructField("h", DataTypes.createArrayType(DataTypes.DoubleType), true, Metadata.empty())));
        assertTrue(e.getMessage().contains("array<double>"), e.getMessage());
        assertEquals(HiddenEncoding.BF16, HiddenEncoding.parse("BF16"));
    }

    @Test void metadataNamesTheEncodingOfABinaryColumn() {
        StructField bf16 = HiddenEncoding.BF16.field("h", false);
        assertEquals(DataTypes.BinaryType, bf16.dataType());
        assertEquals(HiddenEncoding.BF16, HiddenEncoding.inferFrom(bf16));
        StructField wrong = new StructField("h", DataTypes.createArrayType(DataTypes.FloatType), true, bf16.metadata());
        MoeSparkException e = assertThrows(MoeSparkException.class, () -> HiddenEncoding.inferFrom(wrong));
        assertTrue(e.getMessage().contains("sparkmoe.encoding=bf16"), e.getMessage());
    }

    @Test void decodeIntoWritesAtTheOffsetOnly() {
        float[] v = TensorChecks.randomNormal(TensorChecks.freshSeed(), 6, 1.0);
        for (HiddenEncoding enc : HiddenEncoding.values()) {
            float[] dst = new float[10];
            java.util.Arrays.fill(dst, Float.NaN);
            assertEquals(6, enc.decodeInto(enc.encode(v, 0, 6), dst, 2), enc.name());
            assertTrue(Float.isNaN(dst[1]) && Float.isNaN(dst[8]), enc.name());
            float[] expect = enc == HiddenEncoding.BF16 ? HiddenEncoding.BF16.decode(HiddenEncoding.BF16.encode(v, 0, 6)) : v;
            assertArrayEquals(expect, java.util.Arrays.copyOfRange(dst, 2, 8), enc.name());
        }
    }
}
