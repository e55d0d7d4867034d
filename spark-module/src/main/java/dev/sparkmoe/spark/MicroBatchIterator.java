package dev.sparkmoe.spark;

import java.io.Serializable;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.function.Supplier;

/**
 * Runs a partition's rows through a {@link LayerStack} in micro-batches: rows are gathered, in order, until the batch
 * holds at least {@code batchTokens} tokens (a row is never split, so one long row may make a bigger batch), the
 * batch runs as one forward, and each input row yields exactly one output row, in input order. The engines are
 * acquired on the first row, so an empty partition loads nothing.
 *
 * @param <I> input row type
 * @param <O> output row type
 */
public final class MicroBatchIterator<I, O> implements Iterator<O> {
    /** How to read the hidden-state cell of a row, name the row in errors, and build the output row. */
    public interface RowCodec<I, O> extends Serializable {
        Object hiddenCell(I row);

        /** E.g. "row 17 of partition 3 (id=42)"; {@code index} counts rows from 0 within the partition. */
        String describe(I row, long index, int partition);

        /** The output row: the input row plus {@code outCell} (null for a bad row) and {@code error} (null when fine). */
        O result(I row, Object outCell, String error);
    }

    private final Iterator<I> in;
    private final RowCodec<I, O> codec;
    private final HiddenEncoding inEnc;
    private final HiddenEncoding outEnc;
    private final Supplier<LayerStack> stackSupplier;
    private final int batchTokens;
    private final BadRowPolicy policy;
    private final int partition;
    private final ArrayDeque<O> ready = new ArrayDeque<>();

    private LayerStack stack;
    private long rowIndex;
    private float[] inBuf = new float[0];
    private float[] outBuf = new float[0];

    public MicroBatchIterator(Iterator<I> in, RowCodec<I, O> codec, HiddenEncoding inEnc, HiddenEncoding outEnc,
                              Supplier<LayerStack> stackSupplier, int batchTokens, BadRowPolicy policy, int partition) {
        if (batchTokens < 1) throw new MoeSparkException("batchSize must be >= 1 token, got " + batchTokens);
        this.in = in;
        this.codec = codec;
        this.inEnc = inEnc;
        this.outEnc = outEnc;
        this.stackSupplier = stackSupplier;
        this.batchTokens = batchTokens;
        this.policy = policy;
        this.partition = partition;
    }

    @Override public boolean hasNext() {
        if (ready.isEmpty() && in.hasNext()) runNextBatch();
        return !ready.isEmpty();
    }

    @Override public O next() {
        if (!hasNext()) throw new NoSuchElementException();
        return ready.poll();
    }

    private void runNextBatch() {
        if (stack == null) stack = stackSupplier.get();
        int h = stack.hiddenSize();
        List<I> rows = new ArrayList<>();
        List<float[]> values = new ArrayList<>();
        List<String> errors = new ArrayList<>();
        int tokens = 0;
        while (tokens < batchTokens && in.hasNext()) {
            I row = in.next();
            long index = rowIndex++;
            float[] v = null;
            String error = null;
            try {
                v = inEnc.decode(codec.hiddenCell(row));
                checkRow(v, h);
            } catch (HiddenEncoding.BadValueException e) {
                if (policy == BadRowPolicy.ERROR) {
                    throw new MoeSparkException("bad row: " + codec.describe(row, index, partition) + ": " + e.getMessage()
                            + " (onBadRow=error; onBadRow=null keeps the row with a null output and the reason)");
                }
                v = null;
                error = e.getMessage();
            }
            rows.add(row);
            values.add(v);
            errors.add(error);
            if (v != null) tokens = Math.addExact(tokens, v.length / h);
        }
        int n = Math.multiplyExact(tokens, h);
        if (inBuf.length < n) {
            inBuf = new float[n];
            outBuf = new float[n];
        }
        int off = 0;
        for (float[] v : values) {
            if (v == null) continue;
            System.arraycopy(v, 0, inBuf, off, v.length);
            off += v.length;
        }
        if (tokens > 0) stack.forward(inBuf, tokens, outBuf);
        off = 0;
        for (int i = 0; i < rows.size(); i++) {
            float[] v = values.get(i);
            if (v == null) {
                ready.add(codec.result(rows.get(i), null, errors.get(i)));
            } else {
                ready.add(codec.result(rows.get(i), outEnc.encode(outBuf, off, v.length), null));
                off += v.length;
            }
        }
    }

    /** Width and finiteness, checked per row so the error can name the row (the engine would only name a batch token). */
    static void checkRow(float[] v, int h) {
        if (v.length == 0 || v.length % h != 0) {
            throw new HiddenEncoding.BadValueException("hidden state holds " + v.length
                    + " values, not a positive multiple of the model's hidden size " + h);
        }
        for (int k = 0; k < v.length; k++) {
            if (!Float.isFinite(v[k])) {
                throw new HiddenEncoding.BadValueException("token " + (k / h) + " channel " + (k % h) + " is " + v[k]
                        + " (inputs must be finite)");
            }
        }
    }
}
