package dev.sparkmoe.spark;

import org.apache.spark.SparkConf;

/** The Spark settings this module reads, each declared once with its default. */
public final class MoeSparkConf {
    private MoeSparkConf() {}

    /** Value for {@code spark.plugins}: logs each executor's device once and closes its engines when it stops. */
    public static final String PLUGIN_CLASS = MoePlugin.class.getName();

    /** Value for {@code spark.kryo.registrator}. */
    public static final String KRYO_REGISTRATOR_CLASS = MoeKryoRegistrator.class.getName();

    /**
     * The Spark resource name whose addresses are CUDA device ordinals ({@code spark.executor.resource.<name>.*},
     * {@code spark.task.resource.<name>.amount}). Default {@value #GPU_RESOURCE_DEFAULT}.
     */
    public static final String GPU_RESOURCE = "spark.sparkmoe.gpu.resource";
    public static final String GPU_RESOURCE_DEFAULT = "gpu";

    public static String gpuResource(SparkConf conf) {
        return conf == null ? GPU_RESOURCE_DEFAULT : conf.get(GPU_RESOURCE, GPU_RESOURCE_DEFAULT);
    }
}
