package dev.sparkmoe.cuda;

/** A failed CUDA driver call (naming the call and the CUresult), or misuse of a CUDA handle (closed twice, used after close). */
public class CudaException extends RuntimeException {
    private final int result;

    public CudaException(String message) { this(message, 0, null); }

    public CudaException(String message, int result, Throwable cause) {
        super(message, cause);
        this.result = result;
    }

    /** The CUresult code of the failed call, or 0 (CUDA_SUCCESS) when the error is a misuse, not a driver failure. */
    public int result() { return result; }
}
