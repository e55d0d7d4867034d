package dev.sparkmoe.spark;

import dev.sparkmoe.engine.Device;

/** Where this JVM runs a layer: a concrete device (CPU or GPU), the CUDA ordinal (-1 on the CPU), and why. */
public record Placement(Device device, int gpuOrdinal, String reason) {
    public Placement {
        if (device == Device.AUTO) throw new IllegalArgumentException("a placement is concrete: CPU or GPU");
        if (device == Device.GPU && gpuOrdinal < 0) throw new IllegalArgumentException("a GPU placement needs an ordinal");
        if (device == Device.CPU) gpuOrdinal = -1;
    }

    public String describe() { return (device == Device.GPU ? "gpu " + gpuOrdinal : "cpu") + " (" + reason + ")"; }
}
