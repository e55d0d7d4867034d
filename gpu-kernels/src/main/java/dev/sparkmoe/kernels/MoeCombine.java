package dev.sparkmoe.kernels;

import dev.sparkmoe.cuda.CudaFunction;
import dev.sparkmoe.cuda.CudaFunction.Dim;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;

import static dev.sparkmoe.kernels.MoeRoute.ceilDiv;
import static dev.sparkmoe.kernels.MoeRoute.nullable;

/**
 * Launcher of moe_combine.cu: each token's output as the fixed-order sum of its k weighted rows plus the shared row;
 * and the elementwise fp32 add of a layer stack's residual.
 */
public final class MoeCombine {
    private final CudaFunction combine;
    private final CudaFunction combineBf16;
    private final CudaFunction add;

    public MoeCombine(CudaModule module) {
        combine = module.function("moe_combine");
        combineBf16 = module.function("moe_combine_bf16");
        add = module.function("moe_add_f32");
    }

    /** {@code dst[0, n) = a[0, n) + b[0, n)} in fp32 ({@code dst} may be {@code a} or {@code b}); n a positive multiple of 4. */
    public void add(CudaStream s, DeviceBuffer a, DeviceBuffer b, DeviceBuffer dst, long n) {
        if (n <= 0 || n % 4 != 0) throw new IllegalArgumentException("moe_add_f32: n must be a positive multiple of 4, got " + n);
        for (DeviceBuffer d : new DeviceBuffer[] {a, b, dst}) {
            if (d.elementBytes() != 4 || d.count() < n) {
                throw new IllegalArgumentException("moe_add_f32: buffer '" + d.name() + "' holds " + d.count() + " x " + d.elementBytes()
                        + " B, needs " + n + " floats");
            }
        }
        add.launch(s, Dim.of(ceilDiv(n, 1024)), Dim.of(256), 0, a, b, dst, n);
    }

    /**
     * {@code out[t] = sum_j y[slot(t, j)] + yShared[t]} in fp32, in selection order. {@code y} and {@code yShared} hold fp32
     * (4-byte elements) or bf16 (2-byte elements, {@code sparkmoe.gpu.expertOutputPrecision=bf16}) rows, both the same.
     * {@code slotOfEntry} null: token t's row j is row {@code t * topK + j} (fp32 rows only: the small-batch path's Y).
     */
    public void combine(CudaStream s, DeviceBuffer y, DeviceBuffer yShared, DeviceBuffer slotOfEntry, DeviceBuffer out,
                        DeviceBuffer numTokens, int tokenCapacity, int hidden, int topK) {
        int eb = y.elementBytes();
        if (eb != 4 && eb != 2) throw new IllegalArgumentException("combine: Y '" + y.name() + "' has " + eb + "-byte elements, expected 4 (fp32) or 2 (bf16)");
        if (yShared != null && yShared.elementBytes() != eb) {
            throw new IllegalArgumentException("combine: Y '" + y.name() + "' and Y shared '" + yShared.name() + "' differ in element size ("
                    + eb + " vs " + yShared.elementBytes() + " bytes)");
        }
        if (slotOfEntry == null && eb != 4) throw new IllegalArgumentException("combine: rows by entry (no slot map) need fp32 Y, '" + y.name() + "' is bf16");
        if (eb == 4) {
            combine.launch(s, Dim.of(ceilDiv(hidden, 512), tokenCapacity), Dim.of(128), 0, y, nullable(yShared), nullable(slotOfEntry), out,
                    numTokens, hidden, topK);
        } else {
            combineBf16.launch(s, Dim.of(ceilDiv(hidden, 1024), tokenCapacity), Dim.of(128), 0, y, nullable(yShared), slotOfEntry, out,
                    numTokens, hidden, topK);
        }
    }
}
