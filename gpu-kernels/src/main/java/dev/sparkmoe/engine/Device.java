package dev.sparkmoe.engine;

/** Where a MoE layer runs. */
public enum Device {
    /** The GPU when one is usable, else the CPU. */
    AUTO,
    CPU,
    GPU;

    public static Device parse(String s) {
        return switch (s.toLowerCase()) {
            case "auto" -> AUTO;
            case "cpu" -> CPU;
            case "gpu" -> GPU;
            default -> throw new MoeEngineException("device '" + s + "' is not one of auto, cpu, gpu");
        };
    }
}
