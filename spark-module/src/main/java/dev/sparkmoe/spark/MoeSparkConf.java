package dev.sparkmoe.spark;

import dev.sparkmoe.config.Setting;
import dev.sparkmoe.config.Settings;
import org.apache.spark.SparkConf;

/** The Spark settings this module reads, each declared once with its doc and default. */
public final class MoeSparkConf {
    private MoeSparkConf() {}

    /** Value for {@code spark.plugins}: logs each executor's device once and closes its engines when it stops. */
    public static final String PLUGIN_CLASS = "dev.sparkmoe.spark.MoePlugin";

    /** Value for {@code spark.kryo.registrator}. */
    public static final String KRYO_REGISTRATOR_CLASS = "dev.sparkmoe.spark.MoeKryoRegistrator";

    public static final Setting<String> GPU_RESOURCE = Settings.stringSetting("spark.sparkmoe.gpu.resource",
            "Spark resource name whose addresses are CUDA device ordinals (spark.executor.resource.<name>.*, "
                    + "spark.task.resource.<name>.amount); MoE layers with device auto/gpu run on the address Spark assigns.",
            "gpu");

    public static final Setting<Integer> EXECUTOR_WAIT_SECONDS = Settings.intSetting("spark.sparkmoe.executorWaitSeconds",
            "Cluster jobs: seconds EngineWarmup (the example jobs' first step) waits for the first executor to register "
                    + "before it fails naming the resources the application asks for; Spark itself would wait forever when no "
                    + "worker can offer them (e.g. spark.executor.resource.gpu.amount on workers that offer no 'gpu').",
            180);

    public static String gpuResource(SparkConf conf) {
        return conf == null ? GPU_RESOURCE.defaultValue() : GPU_RESOURCE.parse(conf.get(GPU_RESOURCE.key(), GPU_RESOURCE.defaultValue()));
    }
}
