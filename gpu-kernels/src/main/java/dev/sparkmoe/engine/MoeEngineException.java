package dev.sparkmoe.engine;

/** A MoE layer forward that cannot run: bad input shape or values, engine unavailable, engine closed. */
public class MoeEngineException extends RuntimeException {
    public MoeEngineException(String message) { super(message); }
    public MoeEngineException(String message, Throwable cause) { super(message, cause); }
}
