package dev.sparkmoe.spark;

import dev.sparkmoe.testing.TensorChecks;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FilterFunction;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real multi-process cluster on loopback: Spark's {@code local-cluster[2,1,1024]} (a standalone master and worker
 * in this JVM, two executor JVMs). Executors get this JVM's class path; the launcher wants a SPARK_HOME, which the
 * surefire configuration points at target/spark-home (created here with an empty jars/).
 */
@org.junit.jupiter.api.Timeout(240)
class LoopbackClusterTest {
    private static final double TOL = 1e-5;

    @TempDir static Path tmp;
    static SparkSession spark;
    static Path model;
    static final AtomicInteger executorsRemoved = new AtomicInteger();

    @BeforeAll static void start() throws IOException {
        String home = System.getenv("SPARK_HOME");
        if (home == null) throw new IllegalStateException("SPARK_HOME must be set (the spark-module surefire configuration sets it)");
        SparkTestSupport.fakeSparkHome(Path.of(home));
        model = SparkTestSupport.tinyModel(tmp.resolve("model"), TensorChecks.freshSeed());
        // each worker offers one 'gpu' (address 0) through a discovery script, so the resource path from Spark's
        // scheduler to the placement is exercised on machines without GPUs too
        Path discovery = tmp.resolve("fake-gpu-discovery.sh");
        java.nio.file.Files.writeString(discovery, "#!/bin/sh\necho '{\"name\":\"gpu\",\"addresses\":[\"0\"]}'\n");
        discovery.toFile().setExecutable(true);
        spark = SparkTestSupport.session("local-cluster[2,1,1024]")
                .config("spark.worker.resource.gpu.amount", "1")
                .config("spark.worker.resource.gpu.discoveryScript", discovery.toString())
                .config("spark.executor.resource.gpu.amount", "1")
                .config("spark.task.resource.gpu.amount", "1")
                .config("spark.executor.memory", "768m")
                .config("spark.executor.extraClassPath", SparkTestSupport.testClassPath())
                .config("spark.task.maxFailures", "4")
                // small file splits, so the input is read as several partitions (tasks) even though it is tiny
                .config("spark.sql.files.maxPartitionBytes", "16k")
                .config("spark.sql.files.openCostInBytes", "1k")
                .getOrCreate();
        spark.sparkContext().addSparkListener(new SparkListener() {
            @Override public void onExecutorRemoved(SparkListenerExecutorRemoved e) { executorsRemoved.incrementAndGet(); }
        });
    }

    @AfterAll static void stop() {
        if (spark != null) spark.stop();
    }

    /**
     * Kills its executor JVM (Runtime.halt) in the middle of the first attempt of one partition (after a few rows),
     * once per marker file: the retry, on a fresh executor, finds the marker and runs normally.
     */
    private static final class KillOnce implements FilterFunction<Row> {
        private final String marker;
        private final int partition;
        private transient int seen;

        KillOnce(String marker, int partition) {
            this.marker = marker;
            this.partition = partition;
        }

        @Override public boolean call(Row row) throws IOException {
            TaskContext tc = TaskContext.get();
            if (tc.partitionId() == partition && tc.attemptNumber() == 0 && ++seen == 5 && new File(marker).createNewFile()) {
                Runtime.getRuntime().halt(137);
            }
            return true;
        }
    }

    /** What a task sees: its executor, its 'gpu' addresses from Spark, and where device=auto would run. */
    private record TaskPlacement() implements MapPartitionsFunction<Long, String> {
        @Override public Iterator<String> call(Iterator<Long> it) {
            var gpu = TaskContext.get().resourcesJMap().get("gpu");
            String addresses = gpu == null ? "none" : String.join(",", gpu.addresses());
            return List.of(org.apache.spark.SparkEnv.get().executorId() + "|" + addresses + "|"
                    + ExecutorDevices.resolve(dev.sparkmoe.engine.Device.AUTO).describe()).iterator();
        }
    }

    @Test void tasksSeeTheGpuSparkAssignedAndPlaceAccordingly() {
        List<String> seen = spark.range(0, 4, 1, 4).as(Encoders.LONG()).mapPartitions(new TaskPlacement(), Encoders.STRING()).collectAsList();
        assertEquals(4, seen.size());
        boolean gpuUsable = dev.sparkmoe.gpu.GpuMoeEngine.unavailableReason(0).isEmpty();
        for (String s : seen) {
            String[] f = s.split("\\|");
            assertTrue(!f[0].equals("driver"), s);
            assertEquals("0", f[1], "the task holds the gpu address Spark assigned: " + s);
            assertTrue(gpuUsable ? f[2].equals("gpu 0 (assigned by Spark)") : f[2].startsWith("cpu (GPU engine unavailable"), s);
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private record LoadsPerExecutor() implements MapPartitionsFunction<Long, String> {
        @Override public Iterator<String> call(Iterator<Long> it) {
            return List.of(org.apache.spark.SparkEnv.get().executorId() + ":" + EngineRegistry.loadCount()).iterator();
        }
    }

    @Test void executorKilledMidJobStillWritesEveryRowOnceAndMatchesTheEngine() {
        long seed = TensorChecks.freshSeed();
        List<Row> rows = SparkTestSupport.randomRows(seed, 400, 2);
        String in = tmp.resolve("in").toString(), out = tmp.resolve("out").toString();
        spark.createDataFrame(rows, SparkTestSupport.arraySchema()).repartition(8).write().parquet(in);

        String marker = tmp.resolve("killed-once").toString();
        int removedBefore = executorsRemoved.get();
        // cpu: the rows are compared with the CPU engine at 1e-5 (device=auto would pick a real GPU 0 on a GPU host)
        MoeLayerTransformer t = new MoeLayerTransformer().setModelPath(model.toString()).setLayers(0, 1).setResidual(true)
                .setBatchSize(32).setDevice("cpu").setCpuThreads(1);
        Dataset<Row> input = spark.read().parquet(in);
        assertTrue(input.rdd().getNumPartitions() >= 3, "the input is read as several tasks: " + input.rdd().getNumPartitions());
        input = input.filter(new KillOnce(marker, 1));
        t.transform(input).write().parquet(out);

        assertTrue(new File(marker).exists(), "the kill hook ran");
        // listener events arrive asynchronously: give the executor-removed event a moment
        for (int i = 0; i < 100 && executorsRemoved.get() == removedBefore; i++) sleep(100);
        assertTrue(executorsRemoved.get() > removedBefore, "an executor JVM was lost during the job");
        List<Row> got = spark.read().parquet(out).collectAsList();
        assertEquals(rows.size(), got.size(), "every row written exactly once (seed " + seed + ")");
        Map<Long, Row> inById = new HashMap<>();
        for (Row r : rows) inById.put(r.getLong(0), r);
        Set<Long> seen = new HashSet<>();
        try (SparkTestSupport.Reference ref = new SparkTestSupport.Reference(model, new int[] {0, 1}, true)) {
            for (Row r : got) {
                long id = r.getLong(0);
                assertTrue(seen.add(id), "id " + id + " written twice");
                Row src = inById.get(id);
                assertTrue(src != null, "id " + id + " was not in the input");
                assertEquals(src.getString(1), r.getString(1));
                SparkTestSupport.assertRowMatches("id " + id + " (seed " + seed + ")", SparkTestSupport.floats(r.get(3)),
                        ref.apply(SparkTestSupport.floats(src.get(2))), TOL);
            }
        }
        assertEquals(inById.keySet(), seen, "ids in = ids out");

        // one engine per layer per executor JVM: ask every live executor how many it loaded
        List<String> loads = spark.range(0, 16, 1, 16).as(Encoders.LONG()).mapPartitions(new LoadsPerExecutor(), Encoders.STRING()).collectAsList();
        Map<String, Integer> perExecutor = new HashMap<>();
        for (String s : loads) perExecutor.merge(s.substring(0, s.indexOf(':')), Integer.parseInt(s.substring(s.indexOf(':') + 1)), Math::max);
        assertTrue(perExecutor.size() >= 1, "executors answered: " + loads);
        for (var e : perExecutor.entrySet()) {
            assertTrue(e.getValue() <= 2, "executor " + e.getKey() + " loaded " + e.getValue() + " engines for 2 layers");
            assertTrue(!e.getKey().equals("driver"), "tasks ran in executor JVMs, not the driver");
        }
    }
}
