package dev.sparkmoe.cpu;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.openblas.global.openblas_nolapack;

/**
 * The OpenBLAS calls of the CPU engine (JavaCPP's preset, BLAS only). OpenBLAS runs single-threaded inside each
 * call: the engine parallelizes over experts with its own threads, and two thread pools on the same cores would
 * oversubscribe them. The setting is process-wide; it is made once, when this class loads.
 */
final class Blas {
    static {
        openblas_nolapack.blas_set_num_threads(1);
    }

    private Blas() {}

    /** Forces loading (and the thread setting) ahead of timing-sensitive work. */
    static void init() {}

    /**
     * {@code c[m, n] = a[m, k] · b[n, k]ᵀ}, all row-major fp32: rows of {@code a} times the rows of a weight stored as
     * [out, in] (Hugging Face's layout), which is how every projection of the layer multiplies.
     */
    static void matmulTransposedB(FloatPointer a, FloatPointer b, FloatPointer c, int m, int n, int k) {
        openblas_nolapack.cblas_sgemm(openblas_nolapack.CblasRowMajor, openblas_nolapack.CblasNoTrans, openblas_nolapack.CblasTrans,
                m, n, k, 1f, a, k, b, k, 0f, c, n);
    }

    /** The float64 counterpart, {@code c[m, n] = a[m, k] · b[n, k]ᵀ} (router logits). */
    static void matmulTransposedB(DoublePointer a, DoublePointer b, DoublePointer c, int m, int n, int k) {
        openblas_nolapack.cblas_dgemm(openblas_nolapack.CblasRowMajor, openblas_nolapack.CblasNoTrans, openblas_nolapack.CblasTrans,
                m, n, k, 1.0, a, k, b, k, 0.0, c, n);
    }
}
