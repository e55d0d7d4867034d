package dev.sparkmoe.spark;

import java.io.Serializable;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Supplier;

/**
 * Runs a partition's rows through a {@link LayerStack} in micro-batches: rows are gathered, in order, until the batch
 * holds at least {@code batchTokens} tokens (a row is never split, so one long row may make a bigger batch), the
 * batch runs as one forward, and each input row yields exactly one output row, in input order. One batch is in
 * flight at a time on a helper thread while the task thread decodes the next one and encodes the previous one's
 * rows, so Spark's row handling overlaps the device. The engines are acquired on the first row, so an empty
 * partition loads nothing.
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

    /** Forward passes run here so that a task decodes its next micro-batch while the current one computes. */
    private static final ExecutorService FORWARD_POOL = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "sparkmoe-forward");
        t.setDaemon(true);
        return t;
    });

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
    private Batch<I> inFlight;

    /** Gathered rows, their decoded values (null for a bad row), and the running forward pass over the good ones. */
    private static final class Batch<I> {
        final List<I> rows = new ArrayList<>();
        final List<float[]> values = new ArrayList<>();
        final List<String> errors = new ArrayList<>();
        int tokens;
        Future<float[]> out;
    }

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
        while (ready.isEmpty()) {
            if (inFlight == null) {
                if (!in.hasNext()) return false;
                inFlight = launch(gather());
            }
            // decode the next batch on this (task) thread while the current one computes
            Batch<I> next = in.hasNext() ? gather() : null;
            emit(inFlight);
            inFlight = next == null ? null : launch(next);
        }
        return true;
    }

    @Override public O next() {
        if (!hasNext()) throw new NoSuchElementException();
        return ready.poll();
    }

    private Batch<I> gather() {
        if (stack == null) stack = stackSupplier.get(); // on the task thread: placement reads the task's resources
        int h = stack.hiddenSize();
        Batch<I> b = new Batch<>();
        while (b.tokens < batchTokens && in.hasNext()) {
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
            b.rows.add(row);
            b.values.add(v);
            b.errors.add(error);
            if (v != null) b.tokens = Math.addExact(b.tokens, v.length / h);
        }
        return b;
    }

    private Batch<I> launch(Batch<I> b) {
        int n = Math.multiplyExact(b.tokens, stack.hiddenSize());
        float[] x = new float[n];
        int off = 0;
        for (float[] v : b.values) {
            if (v == null) continue;
            System.arraycopy(v, 0, x, off, v.length);
            off += v.length;
        }
        LayerStack s = stack;
        int tokens = b.tokens;
        b.out = FORWARD_POOL.submit(() -> {
            float[] y = new float[n];
            if (tokens > 0) s.forward(x, tokens, y);
            return y;
        });
        return b;
    }

    private void emit(Batch<I> b) {
        float[] y;
        try {
            y = b.out.get();
        } catch (InterruptedException e) {
            b.out.cancel(true);
            Thread.currentThread().interrupt();
            throw new MoeSparkException("interrupted while a micro-batch was running", e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException r) throw r;
            if (c instanceof Error err) throw err;
            throw new MoeSparkException("micro-batch failed: " + c, c);
        }
        int off = 0;
        for (int i = 0; i < b.rows.size(); i++) {
            float[] v = b.values.get(i);
            if (v == null) {
                ready.add(codec.result(b.rows.get(i), null, b.errors.get(i)));
            } else {
                ready.add(codec.result(b.rows.get(i), outEnc.encode(y, off, v.length), null));
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
