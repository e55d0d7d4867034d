package dev.sparkmoe.spark;

import dev.sparkmoe.testing.TensorChecks;
import org.apache.spark.SparkException;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static dev.sparkmoe.spark.SparkTestSupport.HIDDEN;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The DataFrame, SQL and RDD APIs in local mode (local[2], Kryo with registration required). */
class MoeLayerTransformerTest {
    private static final double TOL = 1e-5;

    @TempDir static Path tmp;
    static SparkSession spark;
    static Path model;

    @BeforeAll static void start() {
        model = SparkTestSupport.tinyModel(tmp.resolve("model"), TensorChecks.freshSeed());
        spark = SparkTestSupport.session("local[2]").getOrCreate();
    }

    @AfterAll static void stop() {
        if (spark != null) spark.stop();
    }

    private static Dataset<Row> frame(List<Row> rows, int partitions) {
        return spark.createDataFrame(rows, SparkTestSupport.arraySchema()).repartition(partitions);
    }

    private static Map<Long, Row> byId(List<Row> rows) {
        Map<Long, Row> m = new HashMap<>();
        for (Row r : rows) assertNull(m.put(r.getLong(0), r), "duplicate id " + r.getLong(0));
        return m;
    }

    @Test void twoLayersWithResidualMatchTheEngineRowByRowAndKeepEveryRow() {
        long seed = TensorChecks.freshSeed();
        List<Row> rows = SparkTestSupport.randomRows(seed, 120, 3);
        MoeLayerTransformer t = new MoeLayerTransformer().setModelPath(model.toString()).setLayers(1, 0)
                .setResidual(true).setBatchSize(16).setDevice("cpu").setCpuThreads(1);
        int loadsBefore = EngineRegistry.loadCount();
        List<Row> out = t.transform(frame(rows, 3)).collectAsList();
        int loadsFirst = EngineRegistry.loadCount() - loadsBefore;
        assertTrue(loadsFirst <= 2, "at most one load per layer for 3 tasks, got " + loadsFirst);
        List<Row> again = t.transform(frame(rows, 2)).collectAsList();
        assertEquals(loadsBefore + loadsFirst, EngineRegistry.loadCount(), "a second job reuses the engines of this JVM");
        assertEquals(rows.size(), out.size(), "one output row per input row");
        Map<Long, Row> in = byId(rows), got = byId(out);
        assertEquals(in.keySet(), got.keySet(), "ids in = ids out (seed " + seed + ")");
        try (SparkTestSupport.Reference ref = new SparkTestSupport.Reference(model, new int[] {1, 0}, true)) {
            for (Row r : out) {
                long id = r.getLong(0);
                assertEquals("tag-" + id, r.getString(1), "input columns are kept");
                float[] x = SparkTestSupport.floats(in.get(id).get(2));
                assertArrayEquals(x, SparkTestSupport.floats(r.get(2)), "input column unchanged");
                SparkTestSupport.assertRowMatches("id " + id + " (seed " + seed + ")", SparkTestSupport.floats(r.get(3)), ref.apply(x), TOL);
            }
        }
        assertEquals(byId(again).keySet(), got.keySet());
    }

    @Test void binaryFp32InBf16OutRoundTrip() throws java.io.IOException {
        long seed = TensorChecks.freshSeed();
        List<Row> rows = SparkTestSupport.randomRows(seed, 40, 2);
        List<Row> binRows = new ArrayList<>();
        for (Row r : rows) {
            float[] x = SparkTestSupport.floats(r.get(2));
            binRows.add(RowFactory.create(r.getLong(0), HiddenEncoding.FP32.encode(x, 0, x.length)));
        }
        StructType schema = new StructType().add("id", DataTypes.LongType).add("state", DataTypes.BinaryType);
        MoeLayerTransformer t = new MoeLayerTransformer().setModelPath(model.toString()).setLayers(0).setInputCol("state")
                .setOutputCol("next").setOutputEncoding("bf16").setBatchSize(5).setDevice("cpu").setDropInputCol(true);
        Dataset<Row> result = t.transform(spark.createDataFrame(binRows, schema).repartition(2));
        assertEquals(List.of("id", "next"), Arrays.asList(result.schema().fieldNames()), "dropInputCol leaves the input out");
        assertEquals(DataTypes.BinaryType, result.schema().apply("next").dataType());
        assertEquals(HiddenEncoding.BF16, HiddenEncoding.inferFrom(result.schema().apply("next")), "output marked bf16");
        java.nio.file.Path saved = java.nio.file.Files.createTempDirectory("bf16-out").resolve("p");
        result.write().parquet(saved.toString());
        assertEquals(HiddenEncoding.BF16, t.copy(new org.apache.spark.ml.param.ParamMap()).setInputCol("next")
                .inputEncodingFor(spark.read().parquet(saved.toString()).schema()), "the mark survives Parquet: a next stage reads bf16");
        Map<Long, Row> in = byId(rows);
        List<Row> out = result.collectAsList();
        assertEquals(rows.size(), out.size());
        try (SparkTestSupport.Reference ref = new SparkTestSupport.Reference(model, new int[] {0}, false)) {
            for (Row r : out) {
                float[] expect = ref.apply(SparkTestSupport.floats(in.get(r.getLong(0)).get(2)));
                byte[] bf = (byte[]) r.get(1);
                assertEquals(expect.length * 2, bf.length);
                // bf16 keeps 8 significand bits: relative error per value <= 2^-9, so the row error is below 4e-3
                SparkTestSupport.assertRowMatches("id " + r.getLong(0) + " (seed " + seed + ")", HiddenEncoding.BF16.decode(bf), expect, 4e-3);
            }
        }
    }

    @Test void badRowsFailNamingTheRow() {
        List<Row> rows = new ArrayList<>(SparkTestSupport.randomRows(TensorChecks.freshSeed(), 10, 1));
        rows.add(RowFactory.create(77L, "short", scala.collection.immutable.ArraySeq.unsafeWrapArray(new float[HIDDEN + 3])));
        MoeLayerTransformer t = new MoeLayerTransformer().setModelPath(model.toString()).setLayers(0).setDevice("cpu");
        SparkException e = assertThrows(SparkException.class, () -> t.transform(frame(rows, 2)).collectAsList());
        assertTrue(e.getMessage().contains("id=77") && e.getMessage().contains("not a positive multiple of the model's hidden size 64"), e.getMessage());

        List<Row> withNull = new ArrayList<>(rows.subList(0, 10));
        withNull.add(RowFactory.create(78L, "null", null));
        e = assertThrows(SparkException.class, () -> t.transform(frame(withNull, 1)).collectAsList());
        assertTrue(e.getMessage().contains("id=78") && e.getMessage().contains("is null"), e.getMessage());

        float[] nan = TensorChecks.randomNormal(TensorChecks.freshSeed(), 2 * HIDDEN, 1.0);
        nan[HIDDEN + 5] = Float.NaN;
        List<Row> withNaN = new ArrayList<>(rows.subList(0, 10));
        withNaN.add(RowFactory.create(79L, "nan", scala.collection.immutable.ArraySeq.unsafeWrapArray(nan)));
        e = assertThrows(SparkException.class, () -> t.transform(frame(withNaN, 1)).collectAsList());
        assertTrue(e.getMessage().contains("id=79") && e.getMessage().contains("token 1 channel 5 is NaN"), e.getMessage());
    }

    @Test void nullPolicyKeepsBadRowsWithTheReason() {
        List<Row> rows = new ArrayList<>(SparkTestSupport.randomRows(TensorChecks.freshSeed(), 12, 2));
        rows.add(RowFactory.create(5L, "empty", scala.collection.immutable.ArraySeq.unsafeWrapArray(new float[0])));
        rows.add(RowFactory.create(6L, "null", null));
        MoeLayerTransformer t = new MoeLayerTransformer().setModelPath(model.toString()).setLayers(0).setDevice("cpu")
                .setOnBadRow("null").setBatchSize(4);
        List<Row> out = t.transform(frame(rows, 2)).collectAsList();
        assertEquals(rows.size(), out.size(), "bad rows are kept, not dropped");
        Map<Long, Row> got = byId(out), in = byId(rows);
        assertNull(got.get(5L).get(3));
        assertTrue(got.get(5L).getString(4).contains("0 values"), got.get(5L).getString(4));
        assertNull(got.get(6L).get(3));
        assertTrue(got.get(6L).getString(4).contains("null"));
        try (SparkTestSupport.Reference ref = new SparkTestSupport.Reference(model, new int[] {0}, false)) {
            for (Row r : out) {
                if (r.getLong(0) < 100) continue;
                assertNull(r.get(4));
                SparkTestSupport.assertRowMatches("id " + r.getLong(0), SparkTestSupport.floats(r.get(3)),
                        ref.apply(SparkTestSupport.floats(in.get(r.getLong(0)).get(2))), TOL);
            }
        }
    }

    @Test void schemaErrorsAreClear() {
        MoeLayerTransformer t = new MoeLayerTransformer().setModelPath(model.toString()).setLayers(0).setInputCol("missing");
        Dataset<Row> df = frame(SparkTestSupport.randomRows(1, 2, 1), 1);
        MoeSparkException e = assertThrows(MoeSparkException.class, () -> t.transform(df));
        assertTrue(e.getMessage().contains("'missing' is not in the dataset"), e.getMessage());
        MoeLayerTransformer t2 = new MoeLayerTransformer().setModelPath(model.toString()).setLayers(0).setInputCol("tag");
        e = assertThrows(MoeSparkException.class, () -> t2.transform(df));
        assertTrue(e.getMessage().contains("hidden states must be array<float> or binary"), e.getMessage());
        MoeLayerTransformer t3 = new MoeLayerTransformer().setModelPath(model.toString()).setLayers(0).setOutputCol("tag");
        e = assertThrows(MoeSparkException.class, () -> t3.transform(df));
        assertTrue(e.getMessage().contains("'tag' already exists"), e.getMessage());
        MoeLayerTransformer t4 = new MoeLayerTransformer().setModelPath(model.toString()).setLayers(5).setDevice("cpu");
        SparkException se = assertThrows(SparkException.class, () -> t4.transform(df).collectAsList());
        assertTrue(se.getMessage().contains("layer 5 is not a MoE layer"), se.getMessage());
    }

    @Test void persistsThroughAPipeline() throws Exception {
        MoeLayerTransformer t = new MoeLayerTransformer().setModelPath(model.toString()).setLayers(0, 1).setResidual(true)
                .setBatchSize(33).setPrecision("fp8").setDevice("cpu").setOutputCol("y");
        String path = tmp.resolve("saved-transformer").toString();
        t.write().overwrite().save(path);
        MoeLayerTransformer back = MoeLayerTransformer.load(path);
        assertEquals(t.uid(), back.uid());
        assertEquals(t.spec(), back.spec());
        assertEquals(33, back.getBatchSize());
        assertEquals("y", back.getOutputCol());

        PipelineModel pm = new Pipeline().setStages(new PipelineStage[] {back.copy(new org.apache.spark.ml.param.ParamMap()).setPrecision("native")})
                .fit(frame(SparkTestSupport.randomRows(2, 3, 1), 1));
        String pmPath = tmp.resolve("saved-pipeline").toString();
        pm.write().overwrite().save(pmPath);
        PipelineModel pm2 = PipelineModel.load(pmPath);
        List<Row> rows = SparkTestSupport.randomRows(TensorChecks.freshSeed(), 8, 2);
        List<Row> out = pm2.transform(frame(rows, 2)).collectAsList();
        Map<Long, Row> in = byId(rows);
        try (SparkTestSupport.Reference ref = new SparkTestSupport.Reference(model, new int[] {0, 1}, true)) {
            for (Row r : out) {
                SparkTestSupport.assertRowMatches("id " + r.getLong(0), SparkTestSupport.floats(r.get(3)),
                        ref.apply(SparkTestSupport.floats(in.get(r.getLong(0)).get(2))), TOL);
            }
        }
    }

    @Test void sqlFunctionMatchesTheEngine() {
        MoeFunctions.register(spark, "moe_layer", model.toString(), 0);
        List<Row> rows = SparkTestSupport.randomRows(TensorChecks.freshSeed(), 20, 2);
        frame(rows, 2).createOrReplaceTempView("states");
        List<Row> out = spark.sql("SELECT id, moe_layer(hidden) AS y FROM states").collectAsList();
        assertEquals(rows.size(), out.size());
        Map<Long, Row> in = byId(rows);
        try (SparkTestSupport.Reference ref = new SparkTestSupport.Reference(model, new int[] {0}, false)) {
            for (Row r : out) {
                SparkTestSupport.assertRowMatches("sql id " + r.getLong(0), SparkTestSupport.floats(r.get(1)),
                        ref.apply(SparkTestSupport.floats(in.get(r.getLong(0)).get(2))), TOL);
            }
        }
        SparkException e = assertThrows(SparkException.class,
                () -> spark.sql("SELECT moe_layer(array(cast(1.0 as float), cast(2.0 as float)))").collectAsList());
        assertTrue(e.getMessage().contains("holds 2 values, not a positive multiple"), e.getMessage());
    }

    @Test void rddApiWithKryoRegistrationRequired() {
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        List<HiddenRow> rows = new ArrayList<>();
        for (Row r : SparkTestSupport.randomRows(TensorChecks.freshSeed(), 30, 2)) rows.add(new HiddenRow(r.getLong(0), SparkTestSupport.floats(r.get(2))));
        MoeLayerSpec spec = new MoeLayerSpec(model.toString(), new int[] {0}, dev.sparkmoe.engine.Device.CPU,
                dev.sparkmoe.engine.Precision.NATIVE, false, 1);
        // a shuffle moves HiddenRows through Kryo; the spec travels as a broadcast
        var bspec = jsc.broadcast(spec);
        JavaRDD<HiddenRow> in = jsc.parallelize(rows, 3).repartition(2);
        List<HiddenRow> out = MoeRdd.apply(in, bspec.value(), 7, BadRowPolicy.ERROR).collect();
        assertEquals(rows.size(), out.size());
        Map<Long, float[]> inById = new HashMap<>();
        for (HiddenRow r : rows) inById.put(r.id(), r.hidden());
        try (SparkTestSupport.Reference ref = new SparkTestSupport.Reference(model, new int[] {0}, false)) {
            for (HiddenRow r : out) SparkTestSupport.assertRowMatches("rdd id " + r.id(), r.hidden(), ref.apply(inById.get(r.id())), TOL);
        }
        assertEquals(Arrays.asList(spec), jsc.parallelize(List.of(spec), 1).collect(), "the spec round-trips through Kryo");
    }

    @Test void parquetRoundTripUnderKryoRegistrationRequired() {
        List<Row> rows = SparkTestSupport.randomRows(TensorChecks.freshSeed(), 24, 2);
        String in = tmp.resolve("pq-in").toString(), out = tmp.resolve("pq-out").toString();
        frame(rows, 2).write().parquet(in);
        MoeLayerTransformer t = new MoeLayerTransformer().setModelPath(model.toString()).setLayers(0).setDevice("cpu")
                .setOutputEncoding("fp32").setOnBadRow("null");
        t.transform(spark.read().parquet(in)).write().parquet(out);
        List<Row> got = spark.read().parquet(out).collectAsList();
        assertEquals(rows.size(), got.size());
        assertEquals(byId(rows).keySet(), byId(got).keySet());
    }
}
