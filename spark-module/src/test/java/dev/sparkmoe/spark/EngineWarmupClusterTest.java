package dev.sparkmoe.spark;

import dev.sparkmoe.engine.Device;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.testing.TensorChecks;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An application that no worker can host (each executor asks for 2 cores, the worker has 1) fails within
 * spark.sparkmoe.executorWaitSeconds with the settings at fault named, instead of waiting forever.
 */
@org.junit.jupiter.api.Timeout(120)
class EngineWarmupClusterTest {
    @TempDir Path tmp;

    @Test void noExecutorFailsNamingTheRequest() throws Exception {
        SparkTestSupport.fakeSparkHome(Path.of(System.getenv("SPARK_HOME")));
        Path model = SparkTestSupport.tinyModel(tmp.resolve("model"), TensorChecks.freshSeed());
        SparkSession spark = SparkTestSupport.session("local-cluster[1,1,1024]")
                .config("spark.executor.cores", "2")
                .config("spark.executor.memory", "512m")
                .config(MoeSparkConf.EXECUTOR_WAIT_SECONDS.key(), "3")
                .getOrCreate();
        try {
            MoeLayerSpec spec = new MoeLayerSpec(model.toString(), new int[] {0}, Device.CPU, Precision.NATIVE, false, 1);
            long t0 = System.nanoTime();
            MoeSparkException e = assertThrows(MoeSparkException.class, () -> EngineWarmup.preload(spark, spec));
            assertTrue(e.getMessage().contains("no executor registered") && e.getMessage().contains("spark.executor.cores=2"), e.getMessage());
            assertTrue((System.nanoTime() - t0) / 1e9 < 60, "failed promptly");
        } finally {
            spark.stop();
        }
    }
}
