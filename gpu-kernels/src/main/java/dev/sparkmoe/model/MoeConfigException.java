package dev.sparkmoe.model;

/** A model configuration that this library cannot run: unknown family, unsupported activation, inconsistent sizes. */
public class MoeConfigException extends RuntimeException {
    public MoeConfigException(String message) { super(message); }
    public MoeConfigException(String message, Throwable cause) { super(message, cause); }
}
