package dev.sparkmoe.kernels;

import dev.sparkmoe.cuda.CudaFunction;
import dev.sparkmoe.cuda.CudaFunction.Dim;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;

import static dev.sparkmoe.kernels.MoeRoute.ceilDiv;
import static dev.sparkmoe.kernels.MoeRoute.nullable;

/** Launcher of moe_combine.cu: each token's output as the fixed-order sum of its k weighted rows plus the shared row. */
public final class MoeCombine {
    private final CudaFunction combine;

    public MoeCombine(CudaModule module) {
        combine = module.function("moe_combine");
    }

    public void combine(CudaStream s, DeviceBuffer y, DeviceBuffer yShared, DeviceBuffer slotOfEntry, DeviceBuffer out,
                        DeviceBuffer numTokens, int tokenCapacity, int hidden, int topK) {
        combine.launch(s, Dim.of(ceilDiv(hidden, 512), tokenCapacity), Dim.of(128), 0, y, nullable(yShared), slotOfEntry, out,
                numTokens, hidden, topK);
    }
}
