package dev.sparkmoe.spark;

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
        int tasks = Math.max(2, 4 * spark.sparkContext().defaultParallelism());
        List<String> lines = spark.range(0, tasks, 1, tasks).as(Encoders.LONG())
                .mapPartitions(new Load(spec), Encoders.STRING()).collectAsList();
        return List.copyOf(new TreeSet<>(lines));
    }

    private record Load(MoeLayerSpec spec) implements MapPartitionsFunction<Long, String> {
        @Override public Iterator<String> call(Iterator<Long> ignored) {
            LayerStack stack = LayerStack.open(spec);
            SparkEnv env = SparkEnv.get();
            return List.of("executor " + (env == null ? "?" : env.executorId()) + ": " + stack.deviceDescription()).iterator();
        }
    }
}
