package dev.sparkmoe.spark;

/** A MoE layer applied through Spark cannot run: bad row, bad parameter, no usable device, bad cluster settings. */
public class MoeSparkException extends RuntimeException {
    public MoeSparkException(String message) { super(message); }
    public MoeSparkException(String message, Throwable cause) { super(message, cause); }
}
