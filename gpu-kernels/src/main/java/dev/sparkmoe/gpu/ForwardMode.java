package dev.sparkmoe.gpu;

import dev.sparkmoe.engine.MoeEngineException;

/** How {@link GpuMoeEngine#forward} shares the engine between caller threads ({@link GpuEngineSettings#FORWARD_MODE}). */
public enum ForwardMode {
    /** The whole call under the engine lock, host copies included: the first design, kept for comparison. */
    SERIAL,
    /** Host copies on the caller's thread into its own pinned staging, outside the lock; the lock covers queuing only. */
    PIPELINED,
    /** PIPELINED, plus uploads and downloads on copy streams through double-buffered device staging. */
    OVERLAPPED;

    public static ForwardMode parse(String s) {
        return switch (s.toLowerCase(java.util.Locale.ROOT)) {
            case "serial" -> SERIAL;
            case "pipelined" -> PIPELINED;
            case "overlapped" -> OVERLAPPED;
            default -> throw new MoeEngineException(GpuEngineSettings.FORWARD_MODE.key() + " must be serial, pipelined or overlapped, got '" + s + "'");
        };
    }
}
