package dev.sparkmoe.spark;

import dev.sparkmoe.engine.Device;
import dev.sparkmoe.engine.Precision;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * What to run: one or more MoE layers of a checkpoint, applied in sequence, optionally each with its residual
 * ({@code x <- x + moe(x)} instead of {@code x <- moe(x)}). Small and serializable: it travels in task closures and
 * broadcasts, never the weights; every executor opens {@link #modelPath()} itself.
 */
public final class MoeLayerSpec implements Serializable {
    private static final long serialVersionUID = 1L;

    private final String modelPath;
    private final int[] layers;
    private final Device device;
    private final Precision precision;
    private final boolean residual;
    private final int cpuThreads;

    /**
     * @param modelPath  a checkpoint directory readable by every executor (local path, or file: URI)
     * @param layers     MoE layer indices, applied in this order; at least one
     * @param cpuThreads CPU engine threads (0 = all processors of the executor's machine); ignored on the GPU
     */
    public MoeLayerSpec(String modelPath, int[] layers, Device device, Precision precision, boolean residual, int cpuThreads) {
        if (modelPath == null || modelPath.isBlank()) throw new MoeSparkException("modelPath must be set to a checkpoint directory");
        if (layers == null || layers.length == 0) throw new MoeSparkException("layers must name at least one MoE layer");
        for (int l : layers) if (l < 0) throw new MoeSparkException("layer indices must be >= 0, got " + Arrays.toString(layers));
        if (cpuThreads < 0) throw new MoeSparkException("cpuThreads must be >= 0 (0 = all processors), got " + cpuThreads);
        this.modelPath = stripFileScheme(modelPath);
        this.layers = layers.clone();
        this.device = Objects.requireNonNull(device, "device");
        this.precision = Objects.requireNonNull(precision, "precision");
        this.residual = residual;
        this.cpuThreads = cpuThreads;
    }

    /** A local path, absolute: a relative path means the driver's working directory, not each executor's. */
    private static String stripFileScheme(String p) {
        if (p.startsWith("file://")) return java.nio.file.Path.of(p.substring("file://".length())).toAbsolutePath().toString();
        if (p.startsWith("file:")) return java.nio.file.Path.of(p.substring("file:".length())).toAbsolutePath().toString();
        if (p.matches("^[a-zA-Z][a-zA-Z0-9+.-]*://.*")) {
            throw new MoeSparkException("modelPath " + p + ": only local paths (or file: URIs) are supported; put the "
                    + "checkpoint on a filesystem every executor mounts (or copy it there, e.g. with spark.files/--files)");
        }
        return java.nio.file.Path.of(p).toAbsolutePath().toString();
    }

    public String modelPath() { return modelPath; }
    public int[] layers() { return layers.clone(); }
    public Device device() { return device; }
    public Precision precision() { return precision; }
    public boolean residual() { return residual; }
    public int cpuThreads() { return cpuThreads; }

    @Override public boolean equals(Object o) {
        return o instanceof MoeLayerSpec s && modelPath.equals(s.modelPath) && Arrays.equals(layers, s.layers)
                && device == s.device && precision == s.precision && residual == s.residual && cpuThreads == s.cpuThreads;
    }

    @Override public int hashCode() {
        return Objects.hash(modelPath, Arrays.hashCode(layers), device, precision, residual, cpuThreads);
    }

    @Override public String toString() {
        return "MoeLayerSpec[model=" + modelPath + ", layers=" + Arrays.toString(layers) + ", device=" + device
                + ", precision=" + precision + ", residual=" + residual + ", cpuThreads=" + cpuThreads + "]";
    }
}
