package dev.sparkmoe.cuda;

import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;

import java.io.IOException;
import java.io.InputStream;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** A loaded CUDA module (fatbin/cubin); its {@link CudaFunction}s live as long as it does. */
public final class CudaModule extends CudaResource {
    /** The classpath resource of the project's kernels, written by src/main/cuda/build-kernels.sh. */
    public static final String KERNELS_RESOURCE = "dev/sparkmoe/kernels/moe_kernels.fatbin";

    private final CudaContext context;
    private final CUmodule module;
    private final Map<String, CudaFunction> functions = new ConcurrentHashMap<>();

    private CudaModule(CudaContext context, CUmodule module, String description) {
        super("CudaModule", description);
        this.context = context;
        this.module = module;
    }

    /** True when the kernels fatbin is on the classpath (the jar was built with nvcc). */
    public static boolean kernelsPresent() {
        return CudaModule.class.getClassLoader().getResource(KERNELS_RESOURCE) != null;
    }

    /** Loads the project's kernels from the classpath. */
    public static CudaModule loadKernels(CudaContext context) {
        byte[] image;
        try (InputStream in = CudaModule.class.getClassLoader().getResourceAsStream(KERNELS_RESOURCE)) {
            if (in == null) throw new CudaException("the CUDA kernels " + KERNELS_RESOURCE + " are not in this build (built without nvcc)");
            image = in.readAllBytes();
        } catch (IOException e) {
            throw new CudaException("cannot read " + KERNELS_RESOURCE + ": " + e.getMessage(), 0, e);
        }
        return load(context, image, KERNELS_RESOURCE);
    }

    /** Loads a fatbin/cubin/PTX image. */
    public static CudaModule load(CudaContext context, byte[] image, String description) {
        context.makeCurrent();
        CUmodule m = new CUmodule();
        // cuModuleLoadData reads a NUL-terminated image for PTX; fatbins carry their own size
        byte[] z = java.util.Arrays.copyOf(image, image.length + 1);
        Cuda.check(JCudaDriver.cuModuleLoadData(m, z), "cuModuleLoadData(" + description + ", " + image.length + " bytes)");
        return new CudaModule(context, m, description);
    }

    public CudaContext context() { return context; }

    /** The kernel {@code name} (an extern "C" entry point); throws naming it when absent. */
    public CudaFunction function(String name) {
        requireOpen();
        return functions.computeIfAbsent(name, n -> {
            context.makeCurrent();
            CUfunction f = new CUfunction();
            Cuda.check(JCudaDriver.cuModuleGetFunction(f, module, n), "cuModuleGetFunction(\"" + n + "\")");
            return new CudaFunction(this, f, n);
        });
    }

    @Override
    protected void release() {
        context.makeCurrent();
        Cuda.check(JCudaDriver.cuModuleUnload(module), "cuModuleUnload");
    }
}
