package dev.sparkmoe.cuda;

import dev.sparkmoe.config.Setting;
import dev.sparkmoe.config.Settings;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

import java.util.Optional;

/**
 * Process-wide CUDA driver state: loading JCuda's natives, {@code cuInit}, and the checking of every driver return code.
 * Nothing outside this package imports {@code jcuda.*}.
 */
public final class Cuda {
    public static final Setting<Boolean> SYNC_CHECK = Settings.booleanSetting("sparkmoe.cuda.syncCheck",
            "Synchronize the stream after every kernel launch outside graph capture, so that an asynchronous fault is "
                    + "reported at the launch that caused it, naming the kernel (the GPU tests turn it on; slow).",
            false);

    private static volatile boolean syncCheck = SYNC_CHECK.fromSystemProperties();
    private static Optional<String> initFailure;

    private Cuda() {}

    /** Why the CUDA driver cannot be used here (no natives, no driver, no device), or empty when it can. */
    public static synchronized Optional<String> unavailableReason() {
        if (initFailure == null) {
            try {
                JCudaDriver.setExceptionsEnabled(false);
                int r = JCudaDriver.cuInit(0);
                if (r != CUresult.CUDA_SUCCESS) {
                    initFailure = Optional.of("cuInit failed: " + CUresult.stringFor(r) + " (no CUDA driver or no usable GPU)");
                } else {
                    int[] n = new int[1];
                    r = JCudaDriver.cuDeviceGetCount(n);
                    if (r != CUresult.CUDA_SUCCESS) initFailure = Optional.of("cuDeviceGetCount failed: " + CUresult.stringFor(r));
                    else if (n[0] == 0) initFailure = Optional.of("no CUDA device is visible");
                    else initFailure = Optional.empty();
                }
            } catch (Throwable t) { // UnsatisfiedLinkError and friends: JCuda's natives or libcuda.so missing
                initFailure = Optional.of("JCuda could not load the CUDA driver: " + t.getClass().getSimpleName() + ": " + firstLine(t.getMessage()));
            }
        }
        return initFailure;
    }

    /** The first line of a (possibly multi-line) native loader message, so the reason stays one readable line. */
    static String firstLine(String message) {
        if (message == null) return "(no message)";
        int nl = message.indexOf('\n');
        return (nl < 0 ? message : message.substring(0, nl)).strip();
    }

    /** Initializes the driver or throws {@link CudaException} saying why it cannot be used. */
    static void init() {
        unavailableReason().ifPresent(why -> { throw new CudaException(why); });
    }

    /** Throws {@link CudaException} naming {@code call} and the CUresult when {@code result} is not CUDA_SUCCESS. */
    public static void check(int result, String call) {
        if (result != CUresult.CUDA_SUCCESS) {
            throw new CudaException(call + " failed: " + CUresult.stringFor(result) + " (" + result + ")", result, null);
        }
    }

    public static boolean syncCheck() { return syncCheck; }

    public static void setSyncCheck(boolean on) { syncCheck = on; }

    public static int driverVersion() {
        init();
        int[] v = new int[1];
        check(JCudaDriver.cuDriverGetVersion(v), "cuDriverGetVersion");
        return v[0];
    }
}
