package dev.sparkmoe.spark;

import com.esotericsoftware.kryo.Kryo;
import com.esotericsoftware.kryo.Serializer;
import com.esotericsoftware.kryo.io.Input;
import com.esotericsoftware.kryo.io.Output;
import org.apache.spark.serializer.KryoRegistrator;

/**
 * {@code spark.kryo.registrator=dev.sparkmoe.spark.MoeKryoRegistrator}: registers the classes of this project that
 * travel in RDDs, broadcasts and task results, so jobs run with {@code spark.kryo.registrationRequired=true}.
 * Records get explicit serializers (Spark's Kryo cannot reflect on record fields).
 */
public final class MoeKryoRegistrator implements KryoRegistrator {
    @Override public void registerClasses(Kryo kryo) {
        kryo.register(HiddenRow.class, new HiddenRowSerializer());
        kryo.register(HiddenRow[].class);
        kryo.register(MoeLayerSpec.class);
        kryo.register(HiddenEncoding.class);
        kryo.register(BadRowPolicy.class);
        kryo.register(dev.sparkmoe.engine.Device.class);
        kryo.register(dev.sparkmoe.engine.Precision.class);
        kryo.register(float[].class);
        kryo.register(float[][].class);
        kryo.register(int[].class);
        kryo.register(byte[].class);
        // Spark's own registrations leave gaps that our jobs hit under registrationRequired: the task results of a
        // Parquet write carry the schema (so hidden-state columns, array<float> and binary, and common id types),
        // and toLocalIterator ships chunked buffers.
        for (String name : SPARK_SQL_TYPES) {
            try {
                kryo.register(Class.forName(name, false, Thread.currentThread().getContextClassLoader()));
            } catch (ClassNotFoundException e) {
                // a type of another Spark version: nothing to register
            }
        }
    }

    private static final String[] SPARK_SQL_TYPES = {
            "org.apache.spark.sql.types.ArrayType",
            "org.apache.spark.sql.types.MapType",
            "org.apache.spark.sql.types.FloatType$",
            "org.apache.spark.sql.types.BinaryType$",
            "org.apache.spark.sql.types.BooleanType$",
            "org.apache.spark.sql.types.ByteType$",
            "org.apache.spark.sql.types.ShortType$",
            "org.apache.spark.sql.types.StringType",
            "org.apache.spark.sql.types.TimestampType$",
            "org.apache.spark.sql.types.TimestampNTZType$",
            "[Lorg.apache.spark.sql.types.StructField;",
            "[Lorg.apache.spark.sql.types.DataType;",
            // Dataset.toLocalIterator ships results as arrays of these
            "org.apache.spark.util.io.ChunkedByteBuffer",
            "[Lorg.apache.spark.util.io.ChunkedByteBuffer;",
    };

    /** id, then the values (length -1 for none), then the error string (null allowed). */
    static final class HiddenRowSerializer extends Serializer<HiddenRow> {
        @Override public void write(Kryo kryo, Output out, HiddenRow r) {
            out.writeLong(r.id());
            float[] h = r.hidden();
            out.writeInt(h == null ? -1 : h.length);
            if (h != null) out.writeFloats(h);
            out.writeString(r.error());
        }

        @Override public HiddenRow read(Kryo kryo, Input in, Class<HiddenRow> type) {
            long id = in.readLong();
            int n = in.readInt();
            float[] h = n < 0 ? null : in.readFloats(n);
            return new HiddenRow(id, h, in.readString());
        }
    }
}
