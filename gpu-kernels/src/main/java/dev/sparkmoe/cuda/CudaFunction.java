package dev.sparkmoe.cuda;

import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.JCudaDriver;

/**
 * A kernel of a {@link CudaModule} (owned by the module; not closed separately). {@link #launch} checks the launch's
 * return code and, when {@link Cuda#syncCheck()} is on and the stream is not being captured, synchronizes so that a
 * fault names this kernel.
 */
public final class CudaFunction {
    private final CudaModule module;
    private final CUfunction function;
    private final String name;
    private int dynamicSmemLimit;

    CudaFunction(CudaModule module, CUfunction function, String name) {
        this.module = module;
        this.function = function;
        this.name = name;
    }

    public String name() { return name; }

    /** Allows up to {@code bytes} of dynamic shared memory per block (needed above 48 KiB). */
    public synchronized void setMaxDynamicSharedMemory(int bytes) {
        if (bytes <= dynamicSmemLimit) return;
        module.context().makeCurrent();
        Cuda.check(JCudaDriver.cuFuncSetAttribute(function, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
                "cuFuncSetAttribute(" + name + ", MAX_DYNAMIC_SHARED_SIZE_BYTES=" + bytes + ")");
        dynamicSmemLimit = bytes;
    }

    public int attribute(int attr) {
        module.context().makeCurrent();
        int[] v = new int[1];
        Cuda.check(JCudaDriver.cuFuncGetAttribute(v, attr, function), "cuFuncGetAttribute(" + name + ", " + attr + ")");
        return v[0];
    }

    /**
     * Launches on {@code stream}. Arguments, in the kernel's order: {@link DeviceBuffer} (its pointer),
     * {@link KernelArgs.Offset} (a pointer into a buffer), Integer (int), Long (long long), Float (float).
     */
    public void launch(CudaStream stream, Dim grid, Dim block, int dynamicSmemBytes, Object... args) {
        if (grid.x() <= 0 || grid.y() <= 0 || grid.z() <= 0) throw new CudaException("kernel " + name + ": empty grid " + grid);
        if (dynamicSmemBytes > 48 * 1024) setMaxDynamicSharedMemory(dynamicSmemBytes);
        NativePointerObject[] ps = new NativePointerObject[args.length];
        for (int i = 0; i < args.length; i++) ps[i] = KernelArgs.pointerTo(name, i, args[i]);
        module.context().makeCurrent();
        int r = JCudaDriver.cuLaunchKernel(function, grid.x(), grid.y(), grid.z(), block.x(), block.y(), block.z(),
                dynamicSmemBytes, stream.handle(), Pointer.to(ps), null);
        Cuda.check(r, "cuLaunchKernel(" + name + ", grid " + grid + ", block " + block + ", smem " + dynamicSmemBytes + ")");
        if (Cuda.syncCheck() && !stream.capturing()) stream.synchronize("kernel " + name);
    }

    /** A launch dimension. */
    public record Dim(int x, int y, int z) {
        public static Dim of(int x) { return new Dim(x, 1, 1); }
        public static Dim of(int x, int y) { return new Dim(x, y, 1); }
        @Override public String toString() { return "(" + x + "," + y + "," + z + ")"; }
    }
}
