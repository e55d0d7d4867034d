package dev.sparkmoe.checkpoint;

/** A checkpoint that cannot be read or written: missing or corrupt file, missing tensor, wrong dtype or shape. */
public class CheckpointException extends RuntimeException {
    public CheckpointException(String message) { super(message); }
    public CheckpointException(String message, Throwable cause) { super(message, cause); }
}
