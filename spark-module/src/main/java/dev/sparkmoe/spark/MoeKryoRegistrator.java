package dev.sparkmoe.spark;

import com.esotericsoftware.kryo.Kryo;
import org.apache.spark.serializer.KryoRegistrator;

/**
 * {@code spark.kryo.registrator=dev.sparkmoe.spark.MoeKryoRegistrator}: registers the classes of this project that
 * travel in RDDs, broadcasts and task results, so jobs run with {@code spark.kryo.registrationRequired=true}.
 */
public final class MoeKryoRegistrator implements KryoRegistrator {
    @Override public void registerClasses(Kryo kryo) {
        kryo.register(HiddenRow.class);
        kryo.register(MoeLayerSpec.class);
        kryo.register(EngineRegistry.EngineKey.class);
        kryo.register(Placement.class);
        kryo.register(HiddenEncoding.class);
        kryo.register(BadRowPolicy.class);
        kryo.register(dev.sparkmoe.engine.Device.class);
        kryo.register(dev.sparkmoe.engine.Precision.class);
        kryo.register(float[].class);
        kryo.register(float[][].class);
        kryo.register(int[].class);
        kryo.register(byte[].class);
        kryo.register(HiddenRow[].class);
    }
}
