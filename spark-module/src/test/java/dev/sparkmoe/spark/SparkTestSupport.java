package dev.sparkmoe.spark;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.checkpoint.SyntheticCheckpoint;
import dev.sparkmoe.engine.Device;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngines;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.model.ModelFamily;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.model.ScoringFunction;
import dev.sparkmoe.testing.TensorChecks;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Shared fixtures of the Spark tests: a tiny checkpoint, sessions as a user would configure them, reference outputs. */
public final class SparkTestSupport {
    public static final int HIDDEN = 64;

    private SparkTestSupport() {}

    /**
     * A tiny DeepSeek-V3-layout checkpoint (H 64, I 32, 8 experts in 2 groups keep 1, top-2, one shared expert,
     * 2 MoE layers, F32): small enough for fast tests, with routing groups, selection bias and a shared expert.
     */
    public static Path tinyModel(Path dir, long seed) {
        TreeSet<Integer> moe = new TreeSet<>(List.of(0, 1));
        MoeConfig cfg = new MoeConfig(ModelFamily.DEEPSEEK_V3, HIDDEN, 32, 8, 2, 32, false, ScoringFunction.SIGMOID,
                2, 1, true, 2.5f, true, 2, moe, null);
        SyntheticCheckpoint.write(cfg, DType.F32, seed, dir, SyntheticCheckpoint.DEFAULT_SHARD_BYTES);
        return dir;
    }

    /** A builder with the settings every test uses: loopback, no UI, Kryo with registration required, the plugin. */
    public static SparkSession.Builder session(String master) {
        return SparkSession.builder()
                .master(master)
                .appName("sparkmoe-test")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
                .config("spark.kryo.registrationRequired", "true")
                .config("spark.kryo.registrator", MoeSparkConf.KRYO_REGISTRATOR_CLASS)
                .config("spark.plugins", MoeSparkConf.PLUGIN_CLASS);
    }

    public static StructType arraySchema() {
        return new StructType()
                .add("id", DataTypes.LongType, false)
                .add("tag", DataTypes.StringType, true)
                .add("hidden", DataTypes.createArrayType(DataTypes.FloatType, false), true);
    }

    /** Rows id, tag, hidden (1 to maxTokens tokens each, fresh normal values), ids shuffled so order carries no meaning. */
    public static List<Row> randomRows(long seed, int rows, int maxTokens) {
        SplittableRandom r = new SplittableRandom(seed);
        List<Row> out = new ArrayList<>();
        for (int i = 0; i < rows; i++) {
            long id = 1_000_000L + (long) i * 7919 % 100_003;
            int tokens = 1 + r.nextInt(maxTokens);
            float[] h = TensorChecks.randomNormal(r.nextLong(), tokens * HIDDEN, 1.0);
            out.add(RowFactory.create(id, "tag-" + id, scala.collection.immutable.ArraySeq.unsafeWrapArray(h)));
        }
        return out;
    }

    public static float[] floats(Object cell) {
        assertNotNull(cell, "output cell is null");
        return HiddenEncoding.ARRAY.decode(cell).clone();
    }

    /** The reference: the CPU engine run directly (outside Spark) on one row's tokens, layers in order. */
    public static final class Reference implements AutoCloseable {
        private final Checkpoint ckpt;
        private final List<MoeEngine> engines = new ArrayList<>();
        private final boolean residual;

        public Reference(Path model, int[] layers, boolean residual) {
            this.ckpt = Checkpoint.open(model);
            for (int l : layers) engines.add(MoeEngines.open(ckpt, l, Device.CPU, Precision.NATIVE, 1, 0));
            this.residual = residual;
        }

        public float[] apply(float[] x) {
            int tokens = x.length / HIDDEN;
            float[] cur = x.clone();
            for (MoeEngine e : engines) {
                float[] y = e.forward(cur, tokens);
                if (residual) for (int i = 0; i < y.length; i++) y[i] += cur[i];
                cur = y;
            }
            return cur;
        }

        @Override public void close() {
            for (MoeEngine e : engines) e.close();
            ckpt.close();
        }
    }

    /** Per-row check against the reference: relative error in float64 at most {@code tol}. */
    public static void assertRowMatches(String what, float[] out, float[] ref, double tol) {
        assertEquals(ref.length, out.length, what + ": width");
        TensorChecks.assertAllWritten(out, HIDDEN, what);
        TensorChecks.assertClose(out, ref, tol, what);
    }

    /** A directory Spark's standalone launcher accepts as SPARK_HOME (an empty jars/ and a RELEASE marker). */
    public static Path fakeSparkHome(Path dir) throws java.io.IOException {
        Files.createDirectories(dir.resolve("jars"));
        Files.writeString(dir.resolve("RELEASE"), "sparkmoe test stand-in for a Spark distribution\n");
        return dir;
    }

    public static String testClassPath() {
        String cp = System.getProperty("java.class.path");
        assertTrue(cp != null && !cp.isEmpty(), "no java.class.path");
        return cp;
    }
}
