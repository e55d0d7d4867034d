package dev.sparkmoe.spark;

import dev.sparkmoe.engine.Device;

/** Where this JVM runs a layer: a concrete device (CPU or GPU), the CUDA ordinal (-1 on the CPU), and why. */
public record Placement(Device device, int gpuOrdinal, String reason) {
    public Placement {
        if (device == Device.AUTO) throw new IllegalArgumentException("a placement is concrete: CPU or GPU");
        if (device == Device.GPU && gpuOrdinal < 0) throw new IllegalArgumentException("a GPU placement needs an ordinal");
        if (device == Device.CPU) gpuOrdinal = -1;
        reason = oneLine(reason);
    }

    /** Executor logs get one line per placement: the first line of a (possibly multi-line) driver error, capped. */
    private static String oneLine(String s) {
        if (s == null) return "";
        int nl = s.indexOf('\n');
        String first = (nl >= 0 ? s.substring(0, nl) : s).strip();
        return first.length() > 240 ? first.substring(0, 240) + "..." : first;
    }

    public String describe() { return (device == Device.GPU ? "gpu " + gpuOrdinal : "cpu") + " (" + reason + ")"; }
}
