package dev.sparkmoe.npy;

/** A {@code .npy} file that cannot be read or written: bad magic or header, unsupported dtype or order, truncated data, I/O. */
public class NpyException extends RuntimeException {
    public NpyException(String message) { super(message); }
    public NpyException(String message, Throwable cause) { super(message, cause); }
}
