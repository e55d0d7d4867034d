package dev.sparkmoe.spark;

import dev.sparkmoe.checkpoint.Floats;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.MetadataBuilder;
import org.apache.spark.sql.types.StructField;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Locale;

/**
 * How a column holds hidden states. A row holds one or more tokens: its value count must be a positive multiple of
 * the model's hidden size H, tokens one after another (row-major [tokens, H]).
 * <ul>
 *   <li>{@code array}: {@code array<float>}</li>
 *   <li>{@code fp32}: {@code binary}, 4 bytes per value, IEEE-754 binary32, little-endian</li>
 *   <li>{@code bf16}: {@code binary}, 2 bytes per value, bfloat16 (the upper 16 bits of binary32), little-endian;
 *       written with round-to-nearest-even</li>
 * </ul>
 */
public enum HiddenEncoding {
    ARRAY(0), FP32(4), BF16(2);

    private final int bytesPerValue;

    HiddenEncoding(int bytesPerValue) { this.bytesPerValue = bytesPerValue; }

    public String paramValue() { return name().toLowerCase(Locale.ROOT); }

    public static HiddenEncoding parse(String s) {
        for (HiddenEncoding e : values()) if (e.paramValue().equalsIgnoreCase(s)) return e;
        throw new MoeSparkException("hidden-state encoding '" + s + "' is not one of array, fp32, bf16");
    }

    /**
     * Column metadata key naming a binary column's encoding ({@code fp32} or {@code bf16}): written on the columns this
     * project produces (the transformer's output, the example generator's input) and kept by Parquet, so a bf16 column
     * read back is recognized without naming its encoding.
     */
    public static final String METADATA_KEY = "sparkmoe.encoding";

    /**
     * The encoding a column implies when none is named: its {@link #METADATA_KEY} metadata when present, else its type
     * (array<float> -> array, binary -> fp32).
     */
    public static HiddenEncoding inferFrom(StructField field) {
        if (field.metadata().contains(METADATA_KEY)) {
            HiddenEncoding e = parse(field.metadata().getString(METADATA_KEY));
            if (!e.accepts(field.dataType())) {
                throw new MoeSparkException("column '" + field.name() + "' is marked " + METADATA_KEY + "=" + e.paramValue()
                        + " but has type " + field.dataType().simpleString());
            }
            return e;
        }
        DataType type = field.dataType();
        if (type instanceof org.apache.spark.sql.types.ArrayType a && a.elementType().equals(DataTypes.FloatType)) return ARRAY;
        if (type.equals(DataTypes.BinaryType)) return FP32;
        throw new MoeSparkException("column '" + field.name() + "' has type " + type.simpleString()
                + "; hidden states must be array<float> or binary (fp32/bf16 little-endian)");
    }

    /** A column of this encoding, marked with {@link #METADATA_KEY} so that readers infer it. */
    public StructField field(String name, boolean nullable) {
        return new StructField(name, sparkType(), nullable, new MetadataBuilder().putString(METADATA_KEY, paramValue()).build());
    }

    public DataType sparkType() {
        return this == ARRAY ? DataTypes.createArrayType(DataTypes.FloatType, false) : DataTypes.BinaryType;
    }

    /** Whether a column of {@code type} can hold this encoding. */
    public boolean accepts(DataType type) {
        return this == ARRAY
                ? type instanceof org.apache.spark.sql.types.ArrayType a && a.elementType().equals(DataTypes.FloatType)
                : type.equals(DataTypes.BinaryType);
    }

    /**
     * The values of one cell as a new array. Throws {@link BadValueException} (a message without row context) when the
     * cell is null, holds a null element, or has a byte length that is not a whole number of values.
     */
    public float[] decode(Object cell) {
        float[] out = new float[valueCount(cell)];
        decodeInto(cell, out, 0);
        return out;
    }

    /** How many values {@code cell} holds; throws {@link BadValueException} for a null cell, a wrong type or a ragged byte length. */
    public int valueCount(Object cell) {
        if (cell == null) throw new BadValueException("the hidden state is null");
        switch (this) {
            case ARRAY -> {
                if (cell instanceof scala.collection.mutable.ArraySeq.ofFloat m) return m.array().length;
                if (cell instanceof scala.collection.immutable.ArraySeq.ofFloat i) return i.unsafeArray().length;
                if (cell instanceof float[] f) return f.length;
                if (cell instanceof scala.collection.Seq<?> seq) return seq.length();
                throw new BadValueException("expected array<float>, got " + cell.getClass().getName());
            }
            case FP32, BF16 -> {
                if (!(cell instanceof byte[] b)) throw new BadValueException("expected binary, got " + cell.getClass().getName());
                if (b.length % bytesPerValue != 0) {
                    throw new BadValueException("binary hidden state of " + b.length + " bytes is not a whole number of "
                            + paramValue() + " values (" + bytesPerValue + " bytes each)");
                }
                return b.length / bytesPerValue;
            }
        }
        throw new AssertionError(this);
    }

    /**
     * Writes the {@link #valueCount} values of {@code cell} to {@code dst[off, off+count)} (one copy, no intermediate
     * array) and returns the count. Throws {@link BadValueException} like {@link #valueCount}, or for a null element.
     */
    public int decodeInto(Object cell, float[] dst, int off) {
        int n = valueCount(cell);
        switch (this) {
            case ARRAY -> {
                if (cell instanceof scala.collection.mutable.ArraySeq.ofFloat m) System.arraycopy(m.array(), 0, dst, off, n);
                else if (cell instanceof scala.collection.immutable.ArraySeq.ofFloat i) System.arraycopy(i.unsafeArray(), 0, dst, off, n);
                else if (cell instanceof float[] f) System.arraycopy(f, 0, dst, off, n);
                else {
                    scala.collection.Iterator<?> it = ((scala.collection.Seq<?>) cell).iterator();
                    for (int k = 0; k < n; k++) {
                        Object v = it.next();
                        if (v == null) throw new BadValueException("element " + k + " of the hidden state is null");
                        dst[off + k] = ((Number) v).floatValue();
                    }
                }
            }
            case FP32 -> ByteBuffer.wrap((byte[]) cell).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(dst, off, n);
            case BF16 -> {
                byte[] b = (byte[]) cell;
                for (int k = 0, j = 0; k < n; k++, j += 2) {
                    dst[off + k] = Float.intBitsToFloat(((b[j] & 0xff) | (b[j + 1] & 0xff) << 8) << 16);
                }
            }
        }
        return n;
    }

    /**
     * {@code values[from, from+count)} as a cell of this encoding. array<float> cells are plain {@code float[]}: Spark's
     * row encoder copies a primitive array in one call, where a Scala Seq would be converted element by element.
     */
    public Object encode(float[] values, int from, int count) {
        switch (this) {
            case ARRAY -> {
                return java.util.Arrays.copyOfRange(values, from, from + count);
            }
            case FP32 -> {
                ByteBuffer buf = ByteBuffer.allocate(count * 4).order(ByteOrder.LITTLE_ENDIAN);
                buf.asFloatBuffer().put(values, from, count);
                return buf.array();
            }
            case BF16 -> {
                byte[] b = new byte[count * 2];
                for (int k = 0, j = 0; k < count; k++, j += 2) {
                    short v = Floats.floatToBf16(values[from + k]);
                    b[j] = (byte) v;
                    b[j + 1] = (byte) (v >> 8);
                }
                return b;
            }
        }
        throw new AssertionError(this);
    }

    /** A cell that cannot be decoded; the caller adds which row it is. */
    public static final class BadValueException extends MoeSparkException {
        public BadValueException(String message) { super(message); }
    }
}
