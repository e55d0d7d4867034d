package dev.sparkmoe.cpu;

import dev.sparkmoe.checkpoint.MoeLayerWeights;
import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.model.MoeConfig;

/** Placeholder replaced by the CPU engine work in progress. */
public final class CpuMoeEngine implements MoeEngine {
    private final MoeLayerWeights w;
    private final Precision p;

    public CpuMoeEngine(MoeLayerWeights w, Precision p, int threads) { this.w = w; this.p = p; }

    @Override public MoeConfig config() { return w.config(); }
    @Override public int layer() { return w.layer(); }
    @Override public Precision precision() { return p; }
    @Override public String deviceDescription() { return "cpu"; }
    @Override public void forward(float[] hidden, int tokens, float[] out) { throw new MoeEngineException("not written yet"); }
    @Override public void close() {}
}
