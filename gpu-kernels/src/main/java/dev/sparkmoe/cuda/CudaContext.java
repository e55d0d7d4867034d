package dev.sparkmoe.cuda;

import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.JCudaDriver;

/**
 * The primary context of one CUDA device ordinal (retained on open, released on close). CUDA contexts are current per
 * thread: every object of this package calls {@link #makeCurrent()} before it touches the driver, so any thread may use them.
 */
public final class CudaContext extends CudaResource {
    private final int ordinal;
    private final CUdevice device;
    private final CUcontext context;
    private final String name;
    private final int ccMajor;
    private final int ccMinor;
    private final int smCount;
    private final long totalMemory;

    private CudaContext(int ordinal, CUdevice device, CUcontext context, String name, int ccMajor, int ccMinor, int smCount, long total) {
        super("CudaContext", "device " + ordinal + ": " + name);
        this.ordinal = ordinal;
        this.device = device;
        this.context = context;
        this.name = name;
        this.ccMajor = ccMajor;
        this.ccMinor = ccMinor;
        this.smCount = smCount;
        this.totalMemory = total;
    }

    /** Retains the primary context of device {@code ordinal} and makes it current on the calling thread. */
    public static CudaContext open(int ordinal) {
        Cuda.init();
        int[] n = new int[1];
        Cuda.check(JCudaDriver.cuDeviceGetCount(n), "cuDeviceGetCount");
        if (ordinal < 0 || ordinal >= n[0]) {
            throw new CudaException("CUDA device ordinal " + ordinal + " does not exist (" + n[0] + " device(s) visible)");
        }
        CUdevice dev = new CUdevice();
        Cuda.check(JCudaDriver.cuDeviceGet(dev, ordinal), "cuDeviceGet(" + ordinal + ")");
        byte[] nameBytes = new byte[256];
        Cuda.check(JCudaDriver.cuDeviceGetName(nameBytes, nameBytes.length, dev), "cuDeviceGetName");
        int len = 0;
        while (len < nameBytes.length && nameBytes[len] != 0) len++;
        String name = new String(nameBytes, 0, len, java.nio.charset.StandardCharsets.US_ASCII);
        int major = attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        int minor = attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        int sms = attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        long[] total = new long[1];
        Cuda.check(JCudaDriver.cuDeviceTotalMem(total, dev), "cuDeviceTotalMem");
        CUcontext ctx = new CUcontext();
        Cuda.check(JCudaDriver.cuDevicePrimaryCtxRetain(ctx, dev), "cuDevicePrimaryCtxRetain(" + ordinal + ")");
        CudaContext c = new CudaContext(ordinal, dev, ctx, name, major, minor, sms, total[0]);
        c.makeCurrent();
        return c;
    }

    /** Compute capability as major*10+minor of device {@code ordinal}, without retaining a context. */
    public static int computeCapability(int ordinal) {
        Cuda.init();
        CUdevice dev = new CUdevice();
        Cuda.check(JCudaDriver.cuDeviceGet(dev, ordinal), "cuDeviceGet(" + ordinal + ")");
        return attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR) * 10
                + attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    }

    private static int attribute(CUdevice dev, int attr) {
        int[] v = new int[1];
        Cuda.check(JCudaDriver.cuDeviceGetAttribute(v, attr, dev), "cuDeviceGetAttribute(" + attr + ")");
        return v[0];
    }

    /** Makes this context current on the calling thread (cheap; the driver keeps one current context per thread). */
    public void makeCurrent() {
        requireOpen();
        Cuda.check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent(device " + ordinal + ")");
    }

    /** Waits for all work of this context. */
    public void synchronize() {
        makeCurrent();
        Cuda.check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
    }

    /** Free and total device memory in bytes. */
    public long[] memoryInfo() {
        makeCurrent();
        long[] free = new long[1], total = new long[1];
        Cuda.check(JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo");
        return new long[] {free[0], total[0]};
    }

    public int ordinal() { return ordinal; }
    public String name() { return name; }
    /** major*10 + minor, e.g. 90 for Hopper. */
    public int computeCapability() { return ccMajor * 10 + ccMinor; }
    public int multiprocessorCount() { return smCount; }
    public long totalMemory() { return totalMemory; }

    @Override
    protected void release() {
        Cuda.check(JCudaDriver.cuDevicePrimaryCtxRelease(device), "cuDevicePrimaryCtxRelease(" + ordinal + ")");
    }
}
