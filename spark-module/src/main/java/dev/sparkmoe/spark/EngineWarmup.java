package dev.sparkmoe.spark;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.SparkSession;

import java.util.Iterator;
import java.util.List;
import java.util.TreeSet;

/**
 * Loads a spec's engines on the executors before a timed job, so the job measures inference rather than weight
 * loading. Runs several tasks per task slot so that every live executor gets at least one (a heuristic: Spark
 * does not promise placement); returns one line per executor saying where its layers run.
 */
public final class EngineWarmup {
    private EngineWarmup() {}

    public static List<String> preload(SparkSession spark, MoeLayerSpec spec) {
        awaitExecutors(spark.sparkContext());
        int tasks = Math.max(2, 4 * spark.sparkContext().defaultParallelism());
        List<String> lines = spark.range(0, tasks, 1, tasks).as(Encoders.LONG())
                .mapPartitions(new Load(spec), Encoders.STRING()).collectAsList();
        return List.copyOf(new TreeSet<>(lines));
    }

    /**
     * On a cluster, waits (up to {@link MoeSparkConf#EXECUTOR_WAIT_SECONDS}) for the first executor, so that an
     * application no worker can host fails with the reason instead of Spark's endless "Initial job has not accepted
     * any resources". Local masters return at once.
     */
    static void awaitExecutors(org.apache.spark.SparkContext sc) {
        if (sc.isLocal()) return;
        SparkConf conf = sc.getConf();
        int waitSeconds = MoeSparkConf.EXECUTOR_WAIT_SECONDS.parse(conf.get(MoeSparkConf.EXECUTOR_WAIT_SECONDS.key(),
                String.valueOf(MoeSparkConf.EXECUTOR_WAIT_SECONDS.defaultValue())));
        long deadline = System.nanoTime() + waitSeconds * 1_000_000_000L;
        while (sc.statusTracker().getExecutorInfos().length < 2) { // the driver is listed too
            if (System.nanoTime() > deadline) {
                StringBuilder asked = new StringBuilder();
                for (String k : new String[] {"spark.executor.cores", "spark.executor.memory", "spark.executor.instances", "spark.cores.max"}) {
                    if (conf.contains(k)) asked.append(", ").append(k).append('=').append(conf.get(k));
                }
                for (scala.Tuple2<String, String> kv : conf.getAllWithPrefix("spark.executor.resource.")) {
                    asked.append(", spark.executor.resource.").append(kv._1()).append('=').append(kv._2());
                }
                throw new MoeSparkException("no executor registered with " + sc.master() + " within " + waitSeconds + " s ("
                        + MoeSparkConf.EXECUTOR_WAIT_SECONDS.key() + "); the application asks for"
                        + (asked.length() == 0 ? " Spark's defaults" : asked.substring(1))
                        + ": check that a worker offers that many cores, that much memory and those resources (a 'gpu' "
                        + "resource needs spark.worker.resource.gpu.amount and a discovery script on the worker), and the "
                        + "worker's log; an executor that exits at launch (e.g. a Java runtime without the "
                        + "jdk.incubator.vector module that Spark's executor command adds) leaves its reason in the "
                        + "worker's work dir, <app id>/<executor id>/stderr");
            }
            try {
                Thread.sleep(250);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new MoeSparkException("interrupted while waiting for executors", e);
            }
        }
    }

    private record Load(MoeLayerSpec spec) implements MapPartitionsFunction<Long, String> {
        @Override public Iterator<String> call(Iterator<Long> ignored) {
            LayerStack stack = LayerStack.open(spec);
            SparkEnv env = SparkEnv.get();
            return List.of("executor " + (env == null ? "?" : env.executorId()) + ": " + stack.deviceDescription()).iterator();
        }
    }
}
