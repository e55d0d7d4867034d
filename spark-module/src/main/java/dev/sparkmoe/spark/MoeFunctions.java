package dev.sparkmoe.spark;

import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF1;

/**
 * SQL access: registers a function that applies a {@link MoeLayerSpec} to one hidden-state value, e.g.
 * <pre>
 *   MoeFunctions.register(spark, "moe_layer", spec, HiddenEncoding.ARRAY);
 *   spark.sql("SELECT id, moe_layer(hidden) AS out FROM states");
 * </pre>
 * A SQL function sees one row at a time, so each call is one forward of that row's tokens: convenient, but for
 * throughput use {@link MoeLayerTransformer}, which gathers rows into micro-batches. Engines are shared with the
 * transformer through {@link EngineRegistry} (loaded once per executor). A bad value (null, wrong width, NaN,
 * undecodable binary) fails the query with a {@link MoeSparkException} saying what is wrong with it.
 */
public final class MoeFunctions {
    private MoeFunctions() {}

    /**
     * @param encoding {@code ARRAY}: {@code array<float> -> array<float>}; {@code FP32}/{@code BF16}:
     *                 {@code binary -> binary} in that encoding
     */
    public static void register(SparkSession spark, String name, MoeLayerSpec spec, HiddenEncoding encoding) {
        if (name == null || !name.matches("[A-Za-z_][A-Za-z0-9_]*")) throw new MoeSparkException("SQL function name '" + name + "' is not an identifier");
        spark.udf().register(name, new ApplyLayers(spec, encoding), encoding.sparkType());
    }

    /** Registers {@code moe_layer} for the given layers of {@code modelPath} (auto device, native precision, no residual). */
    public static void register(SparkSession spark, String name, String modelPath, int... layers) {
        register(spark, name, new MoeLayerSpec(modelPath, layers, dev.sparkmoe.engine.Device.AUTO,
                dev.sparkmoe.engine.Precision.NATIVE, false, 0), HiddenEncoding.ARRAY);
    }

    private record ApplyLayers(MoeLayerSpec spec, HiddenEncoding encoding) implements UDF1<Object, Object> {
        @Override public Object call(Object cell) {
            LayerStack stack = LayerStack.open(spec);
            float[] v;
            try {
                v = encoding.decode(cell);
                MicroBatchIterator.checkWidth(v.length, stack.hiddenSize());
                MicroBatchIterator.checkFinite(v, 0, v.length, stack.hiddenSize());
            } catch (HiddenEncoding.BadValueException e) {
                throw new MoeSparkException("bad argument to the MoE SQL function (" + spec + "): " + e.getMessage());
            }
            float[] out = new float[v.length];
            stack.forward(v, v.length / stack.hiddenSize(), out);
            return encoding == HiddenEncoding.ARRAY ? out : encoding.encode(out, 0, out.length);
        }
    }
}
