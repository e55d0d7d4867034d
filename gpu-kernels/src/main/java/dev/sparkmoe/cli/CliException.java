package dev.sparkmoe.cli;

/** A command that cannot go on for a reason outside the library: a bad path, a clash with existing files. */
public class CliException extends RuntimeException {
    public CliException(String message) { super(message); }
    public CliException(String message, Throwable cause) { super(message, cause); }
}
