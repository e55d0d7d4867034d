package dev.sparkmoe.spark;

import dev.sparkmoe.engine.Device;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Optional;
import java.util.function.IntFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The placement rule of {@link ExecutorDevices#decide}: Spark's GPU assignment, local mode, GPU engine availability. */
class ExecutorDevicesTest {
    private static final IntFunction<Optional<String>> GPU_OK = o -> Optional.empty();
    private static final IntFunction<Optional<String>> NO_GPU = o -> Optional.of("no CUDA device");

    @Test void autoUsesTheAssignedGpu() {
        Placement p = ExecutorDevices.decide(Device.AUTO, List.of("3"), false, GPU_OK);
        assertEquals(Device.GPU, p.device());
        assertEquals(3, p.gpuOrdinal());
    }

    @Test void autoWithoutAssignedGpuIsCpuOnAClusterAndGpu0InLocalMode() {
        assertEquals(Device.CPU, ExecutorDevices.decide(Device.AUTO, List.of(), false, GPU_OK).device());
        Placement local = ExecutorDevices.decide(Device.AUTO, List.of(), true, GPU_OK);
        assertEquals(Device.GPU, local.device());
        assertEquals(0, local.gpuOrdinal());
    }

    @Test void autoFallsBackToCpuWhenTheGpuEngineIsUnusable() {
        Placement p = ExecutorDevices.decide(Device.AUTO, List.of("0"), true, NO_GPU);
        assertEquals(Device.CPU, p.device());
        assertTrue(p.reason().contains("no CUDA device"), p.reason());
    }

    @Test void gpuRequestedFailsClearlyWithoutAGpu() {
        MoeSparkException e = assertThrows(MoeSparkException.class, () -> ExecutorDevices.decide(Device.GPU, List.of(), false, GPU_OK));
        assertTrue(e.getMessage().contains("spark.executor.resource.gpu.amount"), e.getMessage());
        e = assertThrows(MoeSparkException.class, () -> ExecutorDevices.decide(Device.GPU, List.of("0"), false, NO_GPU));
        assertTrue(e.getMessage().contains("no CUDA device"), e.getMessage());
        assertEquals(1, ExecutorDevices.decide(Device.GPU, List.of("1", "2"), false, GPU_OK).gpuOrdinal());
    }

    @Test void theAssignedOrdinalIsTheOneChecked() {
        IntFunction<Optional<String>> onlyGpu2Works = o -> o == 2 ? Optional.empty() : Optional.of("GPU " + o + " is busy");
        assertEquals(2, ExecutorDevices.decide(Device.AUTO, List.of("2"), false, onlyGpu2Works).gpuOrdinal());
        assertEquals(Device.CPU, ExecutorDevices.decide(Device.AUTO, List.of("1"), false, onlyGpu2Works).device());
    }

    @Test void cpuIsAlwaysCpu() {
        assertEquals(Device.CPU, ExecutorDevices.decide(Device.CPU, List.of("0"), true, GPU_OK).device());
    }

    @Test void nonNumericAddressIsRejected() {
        MoeSparkException e = assertThrows(MoeSparkException.class, () -> ExecutorDevices.decide(Device.AUTO, List.of("GPU-abc"), false, GPU_OK));
        assertTrue(e.getMessage().contains("not a CUDA device ordinal"), e.getMessage());
    }
}
