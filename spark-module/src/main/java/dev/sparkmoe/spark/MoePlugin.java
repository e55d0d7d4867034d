package dev.sparkmoe.spark;

import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;
import org.apache.spark.resource.ResourceInformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.Map;

/**
 * {@code spark.plugins=dev.sparkmoe.spark.MoePlugin}: on each executor, records the GPUs Spark's resource scheduler
 * assigned to it, says once in the executor log which device MoE layers will use, and closes the executor's engines
 * when it stops. Without the plugin everything still works (task resources are read directly) but engines are only
 * released when the JVM exits.
 */
public final class MoePlugin implements SparkPlugin {
    @Override public DriverPlugin driverPlugin() { return null; }

    @Override public ExecutorPlugin executorPlugin() { return new Executor(); }

    static final class Executor implements ExecutorPlugin {
        private static final Logger LOG = LoggerFactory.getLogger(MoePlugin.class);

        @Override public void init(PluginContext ctx, Map<String, String> extraConf) {
            String resource = MoeSparkConf.gpuResource(ctx.conf());
            ResourceInformation gpus = ctx.resources().get(resource);
            List<String> addresses = gpus == null ? List.of() : List.of(gpus.addresses());
            ExecutorDevices.recordExecutorGpus(addresses);
            boolean local = "driver".equals(ctx.executorID());
            Placement auto = ExecutorDevices.decide(dev.sparkmoe.engine.Device.AUTO, addresses, local,
                    dev.sparkmoe.gpu.GpuMoeEngine.unavailableReason());
            if (addresses.isEmpty()) {
                LOG.info("sparkmoe: executor {}: Spark assigned no '{}' resource; device=auto runs on {}",
                        ctx.executorID(), resource, auto.describe());
            } else {
                LOG.info("sparkmoe: executor {}: Spark assigned {} {}; device=auto runs on {}",
                        ctx.executorID(), resource, addresses, auto.describe());
            }
        }

        @Override public void shutdown() {
            EngineRegistry.closeAll();
            ExecutorDevices.forgetExecutorGpus();
        }
    }
}
