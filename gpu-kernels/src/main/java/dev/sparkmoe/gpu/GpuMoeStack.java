package dev.sparkmoe.gpu;

import dev.sparkmoe.engine.MoeEngine;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.engine.MoeStack;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;

/**
 * A device-resident {@link MoeStack}: GPU engines of one device applied back to back with one upload and one download
 * per launch. Each layer runs on its own engine's stream and workspace; layer i's input is layer i-1's output (or,
 * with the residual, its output + input, added on the device in fp32 exactly as the host does), copied on layer i's
 * stream after an event of layer i-1's stream, and layer i-1's stream waits for that copy before it may overwrite
 * its buffers. A call copies its input into a pinned staging slot of the first engine on the caller's thread, then
 * takes the locks of all its engines (in their fixed global order, so stacks sharing engines never deadlock) only
 * while queuing, and waits for its own event outside them. Results are bitwise those of {@link
 * dev.sparkmoe.engine.HostMoeStack} over the same engines. Holds nothing of its own: the engines must stay open.
 */
public final class GpuMoeStack implements MoeStack {
    private final List<GpuMoeEngine> layers;
    private final List<MoeEngine> layerView;
    private final List<GpuMoeEngine> lockOrder;
    private final boolean residual;
    private final int hidden;
    private final int launchLimit;

    private GpuMoeStack(List<GpuMoeEngine> layers, boolean residual, int hidden) {
        this.layers = List.copyOf(layers);
        this.layerView = List.copyOf(layers);
        List<GpuMoeEngine> distinct = new ArrayList<>(new LinkedHashSet<>(layers));
        distinct.sort(Comparator.comparingLong(e -> e.lockOrder));
        this.lockOrder = List.copyOf(distinct);
        this.residual = residual;
        this.hidden = hidden;
        int limit = Integer.MAX_VALUE;
        for (GpuMoeEngine e : layers) limit = Math.min(limit, e.maxTokens()); // powers of two: the minimum is one too
        this.launchLimit = limit;
    }

    /** Why {@code layers} cannot run as a device-resident stack (not all GPU engines, different devices, ...), or empty. */
    public static Optional<String> unsupportedReason(List<? extends MoeEngine> layers) {
        if (layers == null || layers.isEmpty()) return Optional.of("no layers");
        int ordinal = -1;
        for (MoeEngine e : layers) {
            if (!(e instanceof GpuMoeEngine g)) return Optional.of("layer " + e.layer() + " does not run on the GPU engine");
            if (ordinal < 0) ordinal = g.ordinal();
            else if (g.ordinal() != ordinal) return Optional.of("the layers are on different GPUs (" + ordinal + " and " + g.ordinal() + ")");
        }
        return Optional.empty();
    }

    /** The device-resident stack of {@code layers} (GPU engines of one device, one hidden size). */
    public static GpuMoeStack of(List<? extends MoeEngine> layers, boolean residual) {
        int h = MoeStack.checkLayers(layers);
        unsupportedReason(layers).ifPresent(why -> { throw new MoeEngineException("no device-resident layer stack: " + why); });
        List<GpuMoeEngine> gs = new ArrayList<>();
        for (MoeEngine e : layers) gs.add((GpuMoeEngine) e);
        return new GpuMoeStack(gs, residual, h);
    }

    @Override public List<MoeEngine> layers() { return layerView; }
    @Override public boolean residual() { return residual; }
    @Override public int hiddenSize() { return hidden; }

    @Override
    public String description() {
        return layers.get(0).deviceDescription() + " (" + layers.size() + " layer(s) device-resident" + (residual ? ", residual on the device" : "") + ")";
    }

    @Override
    public void forward(float[] x, int tokens, float[] out) {
        GpuMoeEngine first = layers.get(0);
        if (layers.size() == 1 && !residual) { // nothing to keep on the device: the engine's own forward (and its mode)
            if (x != null && x == out) throw new MoeEngineException("layer stack input and output must be different arrays");
            first.forward(x, tokens, out); // checks the input once (the finite scan costs ~1.5 ns per value)
            return;
        }
        MoeStack.checkCall(this, x, tokens, out);
        if (tokens == 0) return;
        for (GpuMoeEngine e : layers) e.requireOpen();
        StagingSlot slot = first.staging().acquire(first.slotBytes(tokens, launchLimit));
        try {
            for (int i = 0, n = TokenBuckets.launches(tokens, launchLimit); i < n; i++) {
                int t = TokenBuckets.launchTokens(tokens, launchLimit, i);
                int offset = i * launchLimit * hidden;
                slot.copyIn(x, offset, t * hidden);
                lockAll();
                try {
                    for (GpuMoeEngine e : lockOrder) e.requireOpen();
                    enqueue(slot, t, tokens);
                } finally {
                    unlockAll();
                }
                slot.awaitAndCopyOut("layer stack of " + layers.size() + " (" + t + " tokens)", out, offset, t * hidden);
            }
        } finally {
            first.staging().release(slot);
        }
    }

    /** Queues one launch through every layer ({@code callTokens}: the whole call's, which picks each layer's path). All locks held. */
    private void enqueue(StagingSlot slot, int tokens, int callTokens) {
        int n = layers.size();
        LayerWorkspace[] ws = new LayerWorkspace[n];
        // every workspace sized before anything is queued: growing one synchronizes its engine's streams
        for (int i = 0; i < n; i++) ws[i] = layers.get(i).prepare(tokens);
        GpuMoeEngine first = layers.get(0), last = layers.get(n - 1);
        first.enqueueInput(ws[0], slot, tokens);
        first.enqueueLayer(ws[0], tokens, first.usesDecodePath(callTokens));
        for (int i = 1; i < n; i++) {
            layers.get(i).enqueueInputFrom(layers.get(i - 1), ws[i - 1], ws[i], tokens, residual);
            layers.get(i).enqueueLayer(ws[i], tokens, layers.get(i).usesDecodePath(callTokens));
        }
        if (residual) last.enqueueResidual(ws[n - 1], tokens);
        last.enqueueOutput(ws[n - 1], slot, tokens);
    }

    private void lockAll() {
        int locked = 0;
        try {
            for (GpuMoeEngine e : lockOrder) {
                e.lock.lock();
                locked++;
            }
        } catch (RuntimeException | Error t) {
            for (int i = locked - 1; i >= 0; i--) lockOrder.get(i).lock.unlock();
            throw t;
        }
    }

    private void unlockAll() {
        for (int i = lockOrder.size() - 1; i >= 0; i--) lockOrder.get(i).lock.unlock();
    }
}
