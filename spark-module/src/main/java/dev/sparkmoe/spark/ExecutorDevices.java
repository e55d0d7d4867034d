package dev.sparkmoe.spark;

import dev.sparkmoe.engine.Device;
import dev.sparkmoe.gpu.GpuMoeEngine;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Decides where this JVM runs MoE layers, from the GPUs Spark's resource scheduler gave the task or executor.
 * <ul>
 *   <li>The task's own {@code gpu} addresses ({@code spark.task.resource.gpu.amount}) win; else the executor's
 *       (recorded by {@link MoePlugin}); an address is a CUDA device ordinal.</li>
 *   <li>{@code cpu}: always the CPU engine.</li>
 *   <li>{@code auto}: the assigned GPU; with none assigned, in local mode (where Spark schedules no GPUs) GPU 0 when
 *       the GPU engine is available; on a cluster executor without a GPU, the CPU engine. Whenever the GPU engine is
 *       unavailable (no CUDA device, driver or kernels), the CPU engine.</li>
 *   <li>{@code gpu}: like auto but never the CPU: an error when no GPU is assigned on a cluster executor, or when the
 *       GPU engine is unavailable.</li>
 * </ul>
 */
public final class ExecutorDevices {
    private static final Logger LOG = LoggerFactory.getLogger(ExecutorDevices.class);

    /** The executor's GPU addresses as Spark assigned them; null until the plugin ran (or without the plugin). */
    private static volatile List<String> executorGpus;
    private static final Set<String> LOGGED = ConcurrentHashMap.newKeySet();

    private ExecutorDevices() {}

    /** Called by the executor plugin with the executor's resources. */
    static void recordExecutorGpus(List<String> addresses) { executorGpus = List.copyOf(addresses); }

    static void forgetExecutorGpus() { executorGpus = null; }

    /** The placement for the calling task (or driver thread), logged once per distinct placement per JVM. */
    public static Placement resolve(Device requested) {
        SparkEnv env = SparkEnv.get();
        String resource = MoeSparkConf.gpuResource(env == null ? null : env.conf());
        List<String> assigned = List.of();
        TaskContext task = TaskContext.get();
        Map<String, ResourceInformation> taskResources = task == null ? Map.of() : task.resourcesJMap();
        if (taskResources.containsKey(resource)) {
            assigned = List.of(taskResources.get(resource).addresses());
        } else if (executorGpus != null) {
            assigned = executorGpus;
        }
        boolean localMode = env == null || "driver".equals(env.executorId());
        Placement p = decide(requested, assigned, localMode, GpuMoeEngine.unavailableReason());
        if (LOGGED.add(p.describe())) {
            LOG.info("sparkmoe: executor {} runs MoE layers requested on '{}' on {}",
                    env == null ? "(no SparkEnv)" : env.executorId(), requested.name().toLowerCase(), p.describe());
        }
        return p;
    }

    /** The placement rule, free of Spark state (unit-tested directly). */
    static Placement decide(Device requested, List<String> assigned, boolean localMode, Optional<String> gpuUnavailable) {
        switch (requested) {
            case CPU -> {
                return new Placement(Device.CPU, -1, "requested");
            }
            case GPU -> {
                if (gpuUnavailable.isPresent()) {
                    throw new MoeSparkException("device=gpu, but the GPU engine is not available on this executor: " + gpuUnavailable.get());
                }
                if (!assigned.isEmpty()) return new Placement(Device.GPU, ordinal(assigned.get(0)), "assigned by Spark");
                if (localMode) return new Placement(Device.GPU, 0, "local mode schedules no GPUs; using ordinal 0");
                throw new MoeSparkException("device=gpu, but Spark assigned this executor no GPU: set "
                        + "spark.executor.resource.gpu.amount, spark.executor.resource.gpu.discoveryScript "
                        + "(scripts/gpu-discovery.sh) and spark.task.resource.gpu.amount, or use device=auto to fall back to the CPU");
            }
            case AUTO -> {
                if (gpuUnavailable.isPresent()) return new Placement(Device.CPU, -1, "GPU engine unavailable: " + gpuUnavailable.get());
                if (!assigned.isEmpty()) return new Placement(Device.GPU, ordinal(assigned.get(0)), "assigned by Spark");
                if (localMode) return new Placement(Device.GPU, 0, "local mode schedules no GPUs; GPU engine available, using ordinal 0");
                return new Placement(Device.CPU, -1, "Spark assigned this executor no GPU");
            }
        }
        throw new AssertionError(requested);
    }

    private static int ordinal(String address) {
        try {
            int o = Integer.parseInt(address.trim());
            if (o < 0) throw new NumberFormatException();
            return o;
        } catch (NumberFormatException e) {
            throw new MoeSparkException("GPU address '" + address + "' from Spark's resource scheduler is not a CUDA device "
                    + "ordinal (the discovery script must list ordinals, as scripts/gpu-discovery.sh does)");
        }
    }
}
